"""Health state survives edits (issue 11, finding 4): only a change of what is checked restarts
the count, and never puts a down server back; Failure Count applies from now on; every
transition is kept in the database, for when Redis loses it.

The checks run with the engine and the Redis store replaced (no network, no Redis here); the
netns tests run the same with real checks, real traffic and a real Redis."""

import copy

import pytest
from django.apps import apps
from django.test import TestCase

from clusters import services
from clusters.models import RealServer, VirtualService
from core import health as state
from healthchecks import engine, tasks
from healthchecks.models import HealthCheckScript, HealthEvent, ServerHealth, stored_health
from healthchecks.tasks import check_server, target_for
from tests.forms import server_form, service_form

USER = "tester"


# The rules, on the state machine alone.

def test_a_down_server_stays_down_when_its_check_changes_until_the_new_check_passes():
    health = state.Health(state="down", fails=7, fingerprint="old")
    assert state.rebase(health, "new") is True
    assert health.state == "down" and health.fails == 0  # the count restarts, not the state
    assert [state.step(health, False, 3) for _ in range(5)] == [None] * 5
    assert health.state == "down" and health.fails == 5
    assert state.step(health, True, 3) == "up"


def test_an_up_server_counts_the_new_checks_failures_afresh():
    health = state.Health(fails=2, fingerprint="old")
    state.rebase(health, "new")
    assert health.state == "up" and health.fails == 0
    assert [state.step(health, False, 3) for _ in range(3)] == [None, None, "down"]


def test_the_same_check_keeps_its_count():
    health = state.Health(fails=2, fingerprint="same")
    assert state.rebase(health, "same") is False
    assert health.fails == 2
    assert state.step(health, False, 3) == "down"


def test_an_unknown_fingerprint_is_adopted_without_restarting_the_count():
    # a state from before fingerprints, or brought back from the database without one
    health = state.Health(state="down", fails=4)
    assert state.rebase(health, "new") is False
    assert health.fails == 4 and health.fingerprint == "new" and health.state == "down"


def test_a_changed_failure_count_applies_to_the_counting_from_now_on():
    health = state.Health(fails=5)  # 5 of 10 so far
    assert state.step(health, False, 3) == "down"  # lowered to 3: the sixth failure takes it
    health = state.Health(state="down", fails=3)
    assert state.step(health, False, 10) is None  # raised: a down server stays down
    assert health.state == "down"
    assert state.step(health, True, 10) == "up"


# Which edits change what is checked: through the same forms and actions as the WebUI.

@pytest.fixture(autouse=True)
def no_worker(monkeypatch):
    """Edits run what they leave for their commit, but no apply is sent: no worker here."""
    monkeypatch.setattr(services.apply_dataplane, "apply_async", lambda *a, **k: None)
    monkeypatch.setattr(state, "forget", lambda ids: None)


def edit_service(service, **changes):
    form = service_form(service, changes)
    with TestCase.captureOnCommitCallbacks(execute=True):
        return services.do_save_service(form.instance, USER)


def edit_server(server, **changes):
    form = server_form(server, changes)
    with TestCase.captureOnCommitCallbacks(execute=True):
        return services.do_save_real_server(form.instance, USER)


def make_service(**checks):
    fields = dict(label="VNA", vip="198.51.100.100", ports="12000,12100,12950",
                  fallback_ip="192.0.2.120", fallback_masq=True, check_type="connect",
                  check_interval=30, check_timeout=5, failure_count=3)
    fields.update(checks)
    service = VirtualService(**fields)
    service.full_clean()
    services.do_save_service(service, USER)
    server = RealServer(service=service, label="PrimaryCluster", ip="192.0.2.110")
    server.full_clean()
    return services.do_save_real_server(server, USER)


def fingerprint(server):
    server = RealServer.objects.select_related("service", "service__check_script").get(
        pk=server.pk)
    return target_for(server).fingerprint()


def script(name="iConnect", text="#!/bin/sh\nexit 0\n"):
    return HealthCheckScript.objects.create(name=name, script=text)


KEEP_SERVICE = [
    {"label": "VNA archive"}, {"failure_count": 10}, {"check_interval": 10},
    {"check_timeout": 2}, {"on_failure": "cut"}, {"scheduler": "wlc"},
    {"persistent": True, "persistence_timeout": 600}, {"fallback_ip": "192.0.2.121"},
    {"fallback_port": 12000}, {"fallback_masq": False},
]
KEEP_SERVER = [{"label": "Primary"}, {"weight": 50}, {"min_connections": 10,
                                                      "max_connections": 100}]


@pytest.mark.django_db
@pytest.mark.parametrize("check", [
    {"check_type": "connect"}, {"check_type": "connect", "check_port": 12000},
    {"check_type": "http", "check_port": 8080, "check_expect": "200"},
    {"check_type": "ping"}, {"check_type": "external"}])
@pytest.mark.parametrize("edit", KEEP_SERVICE, ids=lambda e: ",".join(e))
def test_edits_of_the_service_that_do_not_change_what_is_checked_keep_the_check(check, edit):
    if check["check_type"] == "external":
        check = {**check, "check_script": script()}
    server = make_service(**check)
    before = fingerprint(server)
    edit_service(server.service, **edit)
    assert fingerprint(server) == before


@pytest.mark.django_db
@pytest.mark.parametrize("edit", KEEP_SERVER, ids=lambda e: ",".join(e))
def test_edits_of_the_real_server_that_do_not_change_what_is_checked_keep_the_check(edit):
    server = make_service()
    before = fingerprint(server)
    edit_server(server, **edit)
    assert fingerprint(server) == before


@pytest.mark.django_db
@pytest.mark.parametrize(("check", "edit"), [
    ({}, {"check_type": "https"}),
    ({}, {"check_type": "ping"}),
    ({}, {"check_port": 12100}),
    ({"check_port": 12100}, {"check_port": ""}),
    ({}, {"ports": "12000,12100"}),  # Connect checks every port of the service
    ({"check_type": "http", "check_port": 8080}, {"check_request": "/health"}),
    ({"check_type": "http", "check_port": 8080}, {"check_host": "vna.example"}),
    ({"check_type": "http", "check_port": 8080}, {"check_expect": "200"}),
    ({"check_type": "http", "check_port": 8080}, {"check_port": 8081}),
    ({"check_type": "http", "check_port": 8080}, {"vip": "198.51.100.101"}),  # Host: the VIP
    ({"check_type": "external"}, {"check_script": "other"}),
    ({"check_type": "external"}, {"vip": "198.51.100.101"}),  # the script's first argument
])
def test_edits_of_the_service_that_change_what_is_checked_make_a_new_check(check, edit):
    if check.get("check_type") == "external":
        check = {**check, "check_script": script()}
    if edit.get("check_script") == "other":
        edit = {"check_script": script("Other", "#!/bin/sh\nexit 1\n").pk}
    server = make_service(**check)
    before = fingerprint(server)
    edit_service(server.service, **edit)
    assert fingerprint(server) != before


@pytest.mark.django_db
@pytest.mark.parametrize("edit", [{"ip": "192.0.2.111"}, {"port": 12000}])
def test_a_new_address_or_port_of_the_real_server_makes_a_new_check(edit):
    server = make_service()
    before = fingerprint(server)
    edit_server(server, **edit)
    assert fingerprint(server) != before


@pytest.mark.django_db
def test_a_ping_looks_at_the_address_alone():
    server = make_service(check_type="ping")
    before = fingerprint(server)
    edit_server(server, port=12000)
    edit_service(server.service, ports="12000", check_port=12000)
    assert fingerprint(server) == before


@pytest.mark.django_db
def test_an_edited_script_is_a_new_check():
    server = make_service(check_type="external", check_script=script())
    before = fingerprint(server)
    HealthCheckScript.objects.update(script="#!/bin/sh\nexit 1\n")
    assert fingerprint(server) != before


# Checks as the checks worker runs them, over a store in memory instead of Redis.

@pytest.fixture
def checks(monkeypatch):
    """Run checks whose outcome the test says; returns the transitions."""
    store = {}
    monkeypatch.setattr(state, "load", lambda sid, client=None: copy.deepcopy(
        store.get(sid, state.Health())))
    monkeypatch.setattr(state, "save", lambda sid, h: store.__setitem__(sid, copy.deepcopy(h)))
    monkeypatch.setattr(state, "forget", lambda ids: [store.pop(i, None) for i in ids])
    monkeypatch.setattr(tasks, "redis_client", lambda: type("R", (), {
        "set": lambda *a, **k: None})())
    monkeypatch.setattr(tasks.apply_dataplane, "delay", lambda: None)
    outcomes = []
    monkeypatch.setattr(engine, "run", lambda target: engine.CheckResult(
        outcomes.pop(0), "port 12000: Connection refused"))

    def run(server, *results):
        outcomes.extend(results)
        return [check_server(server.pk) for _ in results]

    run.store = store
    return run


@pytest.mark.django_db
@pytest.mark.parametrize("edit", KEEP_SERVICE, ids=lambda e: ",".join(e))
def test_a_down_server_stays_down_through_service_edits_that_keep_the_check(checks, edit):
    server = make_service()
    assert checks(server, False, False, False) == [None, None, "down"]
    edit_service(server.service, **edit)
    assert checks.store[server.pk].state == "down"
    assert checks(server, False) == [None]
    assert checks.store[server.pk].state == "down" and checks.store[server.pk].fails == 4
    assert checks(server, True) == ["up"]


@pytest.mark.django_db
@pytest.mark.parametrize("edit", KEEP_SERVER, ids=lambda e: ",".join(e))
def test_a_down_server_stays_down_through_real_server_edits(checks, edit):
    server = make_service()
    assert checks(server, False, False, False) == [None, None, "down"]
    edit_server(server, **edit)
    assert checks(server, False) == [None]
    assert checks.store[server.pk].state == "down"


@pytest.mark.django_db
def test_an_up_server_keeps_its_count_through_a_failure_count_edit(checks):
    server = make_service(failure_count=10)
    assert checks(server, False, False, False) == [None] * 3
    edit_service(server.service, failure_count=4)
    assert checks(server, False) == ["down"]  # the fourth failure in a row, not the first


@pytest.mark.django_db
@pytest.mark.parametrize("edit", [{"check_port": 12100}, {"check_type": "ping"}])
def test_a_down_server_stays_down_after_a_check_change_until_the_new_check_passes(
        checks, edit):
    server = make_service()
    assert checks(server, False, False, False) == [None, None, "down"]
    edit_service(server.service, **edit)
    assert checks(server, False, False, False, False) == [None] * 4
    health = checks.store[server.pk]
    assert health.state == "down" and health.fails == 4  # counted afresh
    assert checks(server, True) == ["up"]


@pytest.mark.django_db
def test_a_down_server_stays_down_after_its_address_changes_until_the_new_check_passes(
        checks):
    server = make_service()
    assert checks(server, False, False, False) == [None, None, "down"]
    edit_server(server, ip="192.0.2.111")
    assert checks(server, False) == [None]
    assert checks.store[server.pk].fails == 1 and checks.store[server.pk].state == "down"
    assert checks(server, True) == ["up"]


@pytest.mark.django_db
def test_an_up_server_counts_afresh_after_a_check_change(checks):
    server = make_service()
    assert checks(server, False, False) == [None, None]
    edit_service(server.service, check_port=12100)
    assert checks(server, False, False) == [None, None]  # 1 and 2 of 3, not 3 and 4
    assert checks(server, False) == ["down"]


# The database keeps each transition, for when Redis loses them.

@pytest.mark.django_db
def test_each_transition_is_kept_in_the_database(checks):
    server = make_service()
    checks(server, False, False, False)
    kept = ServerHealth.objects.get(real_server_id=server.pk)
    assert kept.state == "down" and kept.fingerprint == fingerprint(server)
    assert kept.changed_at == checks.store[server.pk].checked_at
    assert stored_health() == {server.pk: state.Health(
        state="down", checked_at=kept.changed_at, message=kept.message,
        fingerprint=kept.fingerprint)}
    assert HealthEvent.objects.filter(event="down").count() == 1
    checks(server, True)
    assert ServerHealth.objects.get(real_server_id=server.pk).state == "up"
    assert stored_health() == {}  # a server Redis knows nothing of is up


@pytest.mark.django_db
def test_a_deleted_server_leaves_nothing_to_bring_back(checks):
    server = make_service()
    checks(server, False, False, False)
    services.do_delete_real_server(server, USER)
    assert not ServerHealth.objects.exists() and stored_health() == {}


def test_healthchecks_registers_the_loader_core_uses_when_redis_lost_the_states():
    assert type(apps.get_app_config("healthchecks")).__name__ == "HealthchecksConfig"
    assert state._loader is stored_health
