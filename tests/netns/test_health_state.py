"""Health state in the lab (issue 11, finding 4): a primary its check took down stays out of
service through edits of the service and of the real server, through a change of the check
until the new check passes, and through a Redis restart — with real checks and real traffic
from the client: new connections go to the fallback (the secondary), never to the failed
primary, until a check passes again."""

import pytest

from clusters import services, status
from clusters.dataplane import apply
from clusters.models import RealServer, VirtualService
from core import health as state
from healthchecks.models import ServerHealth
from lab import GUIDE_PORTS, VIP
from tests.forms import server_form, service_form

from .test_dataplane import USER, served_by
from .test_healthchecks import check, vna_with_checks
from .traffic import connect_many

pytestmark = pytest.mark.netns


def edit_service(service, **changes):
    """As the WebUI saves Cluster Configuration › Virtual Services: the form, then the action."""
    return services.do_save_service(service_form(service, changes).instance, USER)


def edit_server(server, **changes):
    return services.do_save_real_server(server_form(server, changes).instance, USER)


def servers_of_new_connections(lab, count=20):
    return [served_by(a)[0] if not a.startswith("ERROR") else a
            for a in connect_many(lab, VIP, GUIDE_PORTS, count)]


def test_a_failed_primary_stays_out_through_edits_and_a_redis_restart_until_it_passes(
        dataplane, lab, redis_server):
    server = vna_with_checks(check_type="connect", check_port=12000, failure_count=3)
    dataplane.apply()
    assert check(lab, server) == [None]
    assert set(servers_of_new_connections(lab, 7)) == {"primary"}

    lab.stop_listener("primary")
    assert check(lab, server, 3) == [None, None, "down"]
    dataplane.apply()
    assert servers_of_new_connections(lab) == ["secondary"] * 20

    # Edits that do not change what is checked: the state stays, the primary stays out.
    edit_service(server.service, failure_count=10)
    edit_server(server, weight=50)
    assert state.load(server.pk).state == "down"
    dataplane.apply()
    assert servers_of_new_connections(lab) == ["secondary"] * 20
    assert check(lab, server) == [None]  # still failing: no transition either way

    # A new check: counted afresh, but the primary is not back before the new check passes.
    edit_service(server.service, check_port=12100)
    assert check(lab, server) == [None]
    health = state.load(server.pk)
    assert health.state == "down" and health.fails == 1
    dataplane.apply()
    assert servers_of_new_connections(lab) == ["secondary"] * 20

    # Redis restarts (it keeps nothing): whichever reads first gets the kept state back.
    redis_server.flushall()
    apply.forget_live()  # and the dataplane worker with it, as after a reboot
    dataplane.apply()
    assert servers_of_new_connections(lab) == ["secondary"] * 20
    assert redis_server.sismember(state.DOWN_SET, server.pk)

    redis_server.flushall()
    assert check(lab, server) == [None]  # the checks worker first: still down, no transition
    assert state.load(server.pk).state == "down"
    dataplane.apply()
    assert servers_of_new_connections(lab) == ["secondary"] * 20

    redis_server.flushall()
    row = status.layer4_status().rows[0].servers[0]  # System Overview first
    # (": applying…" after it: the flush lost the apply status as well)
    assert row.words.startswith("Down (health check failed)") and row.health == "down"

    # The primary recovers: the next successful check brings it back.
    lab.start_listener("primary")
    assert check(lab, server) == ["up"]
    assert ServerHealth.objects.get(real_server_id=server.pk).state == "up"
    dataplane.apply()
    assert set(servers_of_new_connections(lab)) == {"primary"}
    redis_server.flushall()
    apply.forget_live()
    dataplane.apply()
    assert set(servers_of_new_connections(lab)) == {"primary"}  # and stays back


@pytest.fixture
def two_servers(redis_server, transactional_db):
    redis_server.flushall()
    service = VirtualService.objects.create(label="VNA", vip=VIP, ports="12000",
                                            check_type="connect")
    return [RealServer.objects.create(service=service, label=label, ip=ip)
            for label, ip in (("primary", "192.0.2.110"), ("secondary", "192.0.2.111"))]


def test_the_kept_states_come_back_once_without_overwriting_a_newer_one(two_servers,
                                                                         redis_server):
    first, second = two_servers
    for server in two_servers:
        ServerHealth.objects.create(real_server=server, state="down", changed_at=1000.0,
                                    fingerprint="abc", message="port 12000: refused")
    state.save(first.pk, state.Health(state="up", checked_at=2000.0))  # a check since
    assert state.down_servers() == {second.pk}
    assert state.load(first.pk).checked_at == 2000.0
    kept = state.load(second.pk)
    assert (kept.state, kept.checked_at, kept.fingerprint) == ("down", 1000.0, "abc")
    # Put back once: later changes are the checks worker's, not the database's.
    state.save(second.pk, state.Health(state="up"))
    assert state.load_many([first.pk, second.pk])[second.pk].state == "up"
    assert state.down_servers() == frozenset()


def test_without_kept_states_redis_starts_with_every_server_up(two_servers, redis_server):
    assert state.down_servers() == frozenset()
    assert redis_server.exists(state.MARKER)
    assert state.load_many([s.pk for s in two_servers]) == {
        s.pk: state.Health() for s in two_servers}
