"""The pair after pairing: what replicates and what stays local, all-or-nothing on the
Secondary, the Secondary's read-only Cluster Configuration with Halt/Drain/Online queued for
the Primary (the later action wins), the header, and breaking the pair."""

import datetime
import json

import pytest
from defusedxml.ElementTree import fromstring
from django.conf import settings
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from clusters import services as cluster_services
from clusters import tasks as cluster_tasks
from clusters.models import ConfigGeneration, FloatingIP, RealServer, VirtualService
from core.version import __version__
from ha import pairing, peer, replication
from ha import tasks as ha_tasks
from ha.models import GenerationStamp, Pair, PendingAction
from maintenance.models import OnlineUpdate, Revision
from network import tasks as network_tasks
from network.models import NetworkConfiguration

pytestmark = pytest.mark.django_db

SECRET = "11" * 32
PASSWORD = "a-Long-test-pass"


@pytest.fixture(autouse=True)
def no_tasks(monkeypatch):
    """Nothing reaches a broker: applies and HA tasks are dropped."""
    for task in (cluster_tasks.apply_dataplane, network_tasks.apply_network_from_database,
                 ha_tasks.replicate_now, ha_tasks.catch_up):
        monkeypatch.setattr(task, "apply_async", lambda *args, **kwargs: None)


@pytest.fixture
def no_daemons(monkeypatch):
    calls = []
    monkeypatch.setattr(pairing.vrrp, "configure", lambda pair: calls.append("configure"))
    monkeypatch.setattr(pairing.vrrp, "unconfigure", lambda: calls.append("unconfigure"))
    return calls


@pytest.fixture
def user():
    return get_user_model().objects.create_user("loadbalancer", password=PASSWORD,
                                                email="admin@example.org")


@pytest.fixture
def browser(user):
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def configuration():
    network = NetworkConfiguration.load()
    network.interfaces = {"eth0": {"addresses": ["192.0.2.1/24"], "mtu": None},
                          "eth1": {"addresses": ["198.51.100.1/24"], "mtu": None}}
    network.hostname, network.dns = "lb1", ["192.0.2.53"]
    network.save()
    OnlineUpdate.objects.update_or_create(pk=1, defaults={"enabled": True,
                                                          "server_url": "https://u.example/"})
    service = VirtualService.objects.create(label="VNA", vip="198.51.100.100", ports="104")
    server = RealServer.objects.create(service=service, label="PrimaryCluster",
                                       ip="192.0.2.110")
    FloatingIP.objects.create(address="192.0.2.254")
    ConfigGeneration.objects.update_or_create(pk=1, defaults={"number": 7})
    return server


def be(role, peer_ip="192.0.2.2", local_ip="192.0.2.1"):
    Pair.objects.update_or_create(pk=1, defaults={
        "role": role, "secret": SECRET, "peer_ip": peer_ip, "local_ip": local_ip,
        "peer_fingerprint": "b" * 64, "status": "paired", "virtual_router_id": 51})


def signed_post(client, name, data):
    body = json.dumps(data).encode()
    headers = {k: v for k, v in peer.signed_headers(SECRET, body).items()
               if k != "Content-Type"}
    return client.post(reverse(f"cluster:ha-peer-{name}"), body,
                       content_type="application/json", headers=headers)


def services_now():
    return (list(VirtualService.objects.values()), list(RealServer.objects.values()),
            list(FloatingIP.objects.values_list("address", flat=True)))


# -- what replicates ----------------------------------------------------------------------------

def test_the_payload_leaves_out_what_stays_local_and_carries_the_users(configuration, user):
    data = replication.payload()
    root = fromstring(data["xml"].encode())
    assert root.find("network") is None and root.find("online-update") is None
    assert [e.get("label") for e in root.findall("virtual-service")] == ["VNA"]
    assert [e.get("address") for e in root.findall("floating-ip")] == ["192.0.2.254"]
    assert "lb1" not in data["xml"] and "u.example" not in data["xml"]
    assert data["generation"] == 7
    (given,) = data["users"]
    assert given["username"] == "loadbalancer" and given["password"] == user.password
    assert given["email"] == "admin@example.org" and given["is_active"] is True
    assert PASSWORD not in json.dumps(data)


def test_the_secondary_applies_a_payload_whole_and_takes_the_generation(configuration, user,
                                                                       client):
    data = replication.payload()
    data["generation"] = 3  # lower than its own 7: still applied
    other = get_user_model().objects.create_user("stranger", password="x")
    VirtualService.objects.all().delete()
    FloatingIP.objects.all().delete()
    user.set_password("the-secondary's-own-password")
    user.save()
    be("secondary")
    response = signed_post(client, "replicate", data)
    assert response.status_code == 200 and response.json()["acked"] == 3
    assert ConfigGeneration.current() == 3
    assert VirtualService.objects.get().label == "VNA"
    assert FloatingIP.objects.get().address == "192.0.2.254"
    assert get_user_model().objects.get(username="loadbalancer").check_password(PASSWORD)
    assert not get_user_model().objects.filter(pk=other.pk).exists()
    assert NetworkConfiguration.load().hostname == "lb1"  # its own, untouched
    pair = Pair.load()
    assert pair.generation_acked == 3 and pair.last_error == ""


def test_a_payload_the_secondarys_rules_refuse_changes_nothing(configuration, user, client):
    data = replication.payload()
    # The Primary's VIP is one of this Secondary's interface addresses: its rules refuse it.
    data["xml"] = data["xml"].replace('vip="198.51.100.100"', 'vip="198.51.100.1"')
    data["generation"] = 8
    be("secondary")
    before, users_before = services_now(), list(get_user_model().objects.values())
    response = signed_post(client, "replicate", data)
    assert response.status_code == 422
    error = response.json()["error"]
    assert "198.51.100.1" in error and "interface eth1" in error
    assert services_now() == before and ConfigGeneration.current() == 7
    assert list(get_user_model().objects.values()) == users_before
    assert "Generation 8 refused" in Pair.load().last_error


def test_the_primary_shows_the_secondarys_refusal(configuration, user, browser, monkeypatch):
    be("primary")
    monkeypatch.setattr(peer, "transport", lambda url, body, headers, pin: (
        422, json.dumps({"error": '<virtual-service label="VNA">: Virtual IP: clash',
                         "acked": 5, "state": "passive"}).encode(), "b" * 64))
    replication.replicate()
    pair = Pair.load()
    assert pair.generation_sent == 7 and pair.generation_acked == 0
    assert "The Secondary refused generation 7" in pair.last_error
    page = browser.get(reverse("cluster:ha")).content.decode()
    assert "High Availability Configuration - primary" in page
    assert "The Secondary refused generation 7: &lt;virtual-service" in page
    assert "Break Clustered Pair" in page and 'id="ha-action-rule"' in page


def test_the_catch_up_resends_until_acknowledged(configuration, user, monkeypatch):
    be("primary")
    sent = []

    def secondary(url, body, headers, pin):
        name = url.rstrip("/").rsplit("/", 1)[1]
        sent.append(name)
        if len(sent) == 1:
            raise replication.peer.FetchError("no route to host")
        return 200, json.dumps({"acked": json.loads(body).get("generation"),
                                "state": "passive"}).encode(), pin

    monkeypatch.setattr(peer, "transport", secondary)
    replication.catch_up()
    assert Pair.load().peer_state == "down" and "no route to host" in Pair.load().last_error
    replication.catch_up()
    pair = Pair.load()
    assert pair.generation_acked == 7 and pair.last_error == "" and pair.peer_state == "passive"
    replication.catch_up()  # in step: it only asks how the Secondary is
    assert sent == ["replicate", "replicate", "status"]


# -- the Secondary's Cluster Configuration ---------------------------------------------------------

def test_the_secondary_refuses_configuration_changes_and_says_where_to_make_them(
        configuration, browser):
    be("secondary", peer_ip="192.0.2.9")
    page = browser.get(reverse("cluster:virtual-services")).content.decode()
    assert "This appliance is the Secondary of a clustered pair: change the configuration on " \
           "the Primary" in page
    assert 'href="https://192.0.2.9:9443/lbadmin/"' in page
    before = services_now()
    response = browser.post(reverse("cluster:floating-ips"), {"address": "192.0.2.253"})
    assert response.status_code == 302
    assert services_now() == before
    page = browser.get(response["Location"]).content.decode()
    assert "Not changed: This appliance is the Secondary" in page
    assert browser.post(reverse("cluster:virtual-service-delete",
                                args=[VirtualService.objects.get().pk])).status_code == 302
    assert VirtualService.objects.exists()


def test_the_secondary_refuses_a_restore_a_roll_back_and_a_password_change(
        configuration, browser):
    """Each would change what the Primary replicates: the next replication would undo it, or
    none would come and the pair would differ unseen."""
    be("secondary", peer_ip="192.0.2.9")
    before = services_now()
    for name, args, data in (
            ("maintenance:backup-restore", [], {"restore": "1", "passphrase": ""}),
            ("maintenance:roll-back", [1], {}),
            ("maintenance:passwords", [], {"old_password": "x", "new_password1": "y",
                                           "new_password2": "y"})):
        response = browser.post(reverse(name, args=args), data)
        assert response.status_code == 302, name
        page = browser.get(response["Location"]).content.decode()
        assert "Not changed: This appliance is the Secondary" in page, name
    assert services_now() == before
    # A backup of the Secondary may still be downloaded: it changes nothing.
    response = browser.post(reverse("maintenance:backup-restore"),
                            {"download": "1", "passphrase": ""})
    assert response.status_code == 200 and b"<lbadmin-backup" in response.content


def test_halt_on_the_secondary_applies_at_once_and_is_queued(configuration, browser, client):
    be("secondary")
    response = browser.post(reverse("overview:set-state", args=[configuration.pk]),
                            {"state": "halt"})
    assert response.status_code == 302
    assert RealServer.objects.get().state == "halt"
    action = PendingAction.objects.get()
    assert (action.server_id, action.state, action.user) == (configuration.pk, "halt",
                                                             "loadbalancer")
    page = browser.get(reverse("cluster:ha")).content.decode()
    assert "High Availability Configuration - secondary" in page
    assert "not yet handed to the Primary</dt><dd>1</dd>" in page
    # While it waits, a replication does not overwrite it.
    answer = signed_post(client, "replicate", replication.payload())
    assert answer.status_code == 409 and answer.json()["error"] == "pending local actions"
    assert RealServer.objects.get().state == "halt"


def test_the_secondary_hands_its_actions_to_the_primary(configuration, monkeypatch):
    be("secondary")
    replication.do_queue_local_action(configuration.pk, "drain", "operator")
    pushed = []

    def primary(url, body, headers, pin):
        pushed.append(json.loads(body))
        ids = [a["id"] for a in json.loads(body)["actions"]]
        return 200, json.dumps({"decided": ids, "state": "active"}).encode(), pin

    monkeypatch.setattr(peer, "transport", primary)
    replication.catch_up()
    assert pushed[0]["actions"][0]["state"] == "drain"
    assert not PendingAction.objects.exists() and Pair.load().peer_state == "active"


def action(server, state, at):
    return {"id": 1, "server": server.pk, "state": state, "at": at.isoformat(),
            "user": "operator"}


def test_the_primary_applies_a_secondarys_action_it_has_not_overtaken(configuration, client):
    be("primary")
    replication.stamp_generation()
    RealServer.objects.filter(pk=configuration.pk).update(changed_generation=7)
    GenerationStamp.objects.filter(number=7).update(
        at=timezone.now() - datetime.timedelta(minutes=5))
    response = signed_post(client, "actions", {"actions": [
        action(configuration, "halt", timezone.now() - datetime.timedelta(minutes=1))]})
    assert response.status_code == 200 and response.json()["decided"] == [1]
    server = RealServer.objects.get()
    assert server.state == "halt" and server.changed_generation == 8


def test_the_later_action_wins(configuration, client, user):
    be("primary")
    taken_on_secondary = timezone.now() - datetime.timedelta(minutes=1)
    # The Primary set the server to Drain after the Secondary's Halt was taken.
    generation = cluster_services.do_set_state(configuration, "drain", user)
    GenerationStamp.objects.create(number=generation, at=timezone.now())
    response = signed_post(client, "actions", {"actions": [
        action(configuration, "halt", taken_on_secondary)]})
    assert response.status_code == 200
    assert response.json()["decided"] == [1]  # decided: the Primary's later Drain stays
    assert "changed here later" in response.json()["skipped"][0]
    assert RealServer.objects.get().state == "drain"


def test_of_several_actions_on_one_server_the_last_one_is_applied(configuration, client):
    be("primary")
    now = timezone.now()
    response = signed_post(client, "actions", {"actions": [
        action(configuration, "halt", now - datetime.timedelta(seconds=20)) | {"id": 1},
        action(configuration, "online", now - datetime.timedelta(seconds=10)) | {"id": 2}]})
    assert sorted(response.json()["decided"]) == [1, 2]
    assert RealServer.objects.get().state == "online"


# -- the header --------------------------------------------------------------------------------

def test_the_header_shows_the_role_and_the_vrrp_state(browser, configuration):
    page = browser.get(reverse("overview:index")).content.decode()
    assert 'id="ha-role"' not in page  # standalone: nothing extra
    be("primary")
    (settings.DATA_DIR / "ha").mkdir(exist_ok=True)
    state_file = settings.DATA_DIR / "ha" / "vrrp-state"
    state_file.write_text("master 1764300000\n")
    try:
        assert "Primary | Active" in browser.get(reverse("overview:index")).content.decode()
        be("secondary")
        state_file.write_text("backup 1764300000\n")
        assert "Secondary | Passive" in browser.get(reverse("overview:index")).content.decode()
        state_file.unlink()
        assert "Secondary | Down" in browser.get(reverse("overview:index")).content.decode()
    finally:
        state_file.unlink(missing_ok=True)


def test_a_pair_with_nothing_to_hold_is_idle_not_down(browser, configuration):
    """No VIP or floating IP: ha.render writes no VRRP instance, keepalived never says a
    state; a state file left from an instance since removed is not believed either."""
    be("primary")
    ha_dir = settings.DATA_DIR / "ha"
    ha_dir.mkdir(exist_ok=True)
    conf, state_file = ha_dir / "keepalived.conf", ha_dir / "vrrp-state"
    try:
        conf.write_text("global_defs {\n}\n# no addresses to hold: no VRRP instance\n")
        state_file.write_text("master 1764300000\n")
        assert "Primary | Idle" in browser.get(reverse("overview:index")).content.decode()
        conf.write_text("global_defs {\n}\nvrrp_instance lbadmin {\n}\n")
        assert "Primary | Active" in browser.get(reverse("overview:index")).content.decode()
    finally:
        conf.unlink(missing_ok=True)
        state_file.unlink(missing_ok=True)


def test_an_idle_peer_is_recorded_as_idle(configuration, monkeypatch):
    be("primary")
    Pair.objects.filter(pk=1).update(generation_acked=7)
    monkeypatch.setattr(peer, "transport", lambda url, body, headers, pin: (
        200, b'{"state": "idle"}', pin))
    replication.catch_up()
    assert Pair.load().peer_state == "idle"


# -- breaking the pair -------------------------------------------------------------------------

def test_after_a_break_the_addresses_are_placed_once_keepalived_has_stopped(monkeypatch):
    """keepalived removes the addresses it held as it exits: the full apply that places them
    here again must come after that, and must come (the configuration did not change)."""
    running = iter([True, True, True, False])
    monkeypatch.setattr(pairing, "supervisor_state", lambda: {
        "services": {"keepalived": {"running": next(running)}}})
    events = []
    monkeypatch.setattr(pairing.apply_dataplane, "apply_async",
                        lambda *args, **kwargs: events.append(("apply", kwargs)))
    pairing.reclaim_addresses(sleep=lambda seconds: events.append("slept"))
    assert events == ["slept", "slept", "slept", ("apply", {"kwargs": {"full": True}})]


def test_a_keepalived_that_does_not_stop_delays_the_apply_only_so_long(monkeypatch):
    monkeypatch.setattr(pairing, "supervisor_state", lambda: {
        "services": {"keepalived": {"running": True}}})
    applied, now = [], iter(range(100))
    monkeypatch.setattr(pairing.apply_dataplane, "apply_async",
                        lambda *args, **kwargs: applied.append(kwargs))
    pairing.reclaim_addresses(wait=5, sleep=lambda seconds: None, clock=lambda: next(now))
    assert applied == [{"kwargs": {"full": True}}]


def test_both_nodes_place_their_addresses_again_after_a_break(configuration, user, client,
                                                              no_daemons, monkeypatch):
    reclaimed, sent = [], []
    monkeypatch.setattr(pairing, "reclaim_addresses", lambda: reclaimed.append(True))
    monkeypatch.setattr(peer, "transport", lambda url, body, headers, pin: (
        200, b'{"ok": true}', pin))
    be("primary")
    pairing.do_break_pair(user)
    assert reclaimed == [True]  # the Primary's worker, after keepalived stopped
    be("secondary")
    monkeypatch.setattr("ha.views.send_task", lambda task, *args: sent.append(task.name))
    assert signed_post(client, "break", {"from": "192.0.2.2"}).status_code == 200
    assert sent == ["ha.tasks.break_pair"]  # the Secondary's, in its worker
    reclaimed.clear()
    assert "not in a clustered pair" in pairing.do_break_pair("loadbalancer@192.0.2.2")
    assert reclaimed == [True]  # which, the pair already broken here, only places them



def test_the_primary_tells_the_secondary_and_both_become_standalone(configuration, user,
                                                                    no_daemons, monkeypatch):
    be("primary")
    told = []
    monkeypatch.setattr(peer, "transport", lambda url, body, headers, pin: (
        told.append((url, pin, peer.SIGNATURE_HEADER in headers)) or 200, b'{"ok": true}', pin))
    words = pairing.do_break_pair(user)
    assert "this appliance is standalone" in words
    assert told == [("https://192.0.2.2:9443/lbadmin/cluster/ha/peer/break/", "b" * 64, True)]
    pair = Pair.load()
    assert pair.role == "standalone" and pair.secret == "" and pair.peer_fingerprint == ""
    assert no_daemons == ["unconfigure"]
    assert VirtualService.objects.exists()  # the Primary keeps its configuration


def test_a_broken_secondary_drops_the_replicated_services_after_a_revision(
        configuration, client, no_daemons):
    be("secondary")
    response = signed_post(client, "break", {"from": "192.0.2.2"})
    assert response.status_code == 200
    assert Pair.load().role == "standalone" and no_daemons == ["unconfigure"]
    assert not VirtualService.objects.exists() and not RealServer.objects.exists()
    assert not FloatingIP.objects.exists()
    kept = Revision.objects.filter(action__startswith="before breaking").get()
    assert 'label="VNA"' in kept.xml and "192.0.2.254" in kept.xml


def test_an_unreachable_peer_does_not_stop_a_break(configuration, user, no_daemons,
                                                   monkeypatch):
    be("primary")

    def unreachable(*args):
        raise replication.peer.FetchError("timed out")

    monkeypatch.setattr(peer, "transport", unreachable)
    words = pairing.do_break_pair(user)
    assert "could not be told (timed out): break the pair there too" in words
    assert Pair.load().role == "standalone"


def test_the_break_button_sends_the_break_to_the_worker(configuration, browser, monkeypatch):
    be("primary")
    sent = []
    monkeypatch.setattr("ha.views.send_task", lambda task, *args: sent.append(task.name))
    assert browser.post(reverse("cluster:ha-break")).status_code == 302
    assert sent == ["ha.tasks.break_pair"] and Pair.load().status == "breaking"


def test_the_pair_page_says_heartbeat_needs_no_restart(configuration, browser, monkeypatch):
    be("primary")
    monkeypatch.setattr("ha.views.supervisor_state", lambda: {"services": {
        "keepalived": {"running": True}, "conntrackd": {"running": True}}})
    page = browser.get(reverse("cluster:ha")).content.decode()
    assert "keepalived and conntrackd are running; nothing needs a restart" in page
    monkeypatch.setattr("ha.views.supervisor_state", lambda: {"services": {
        "keepalived": {"running": False}, "conntrackd": {"running": True}}})
    page = browser.get(reverse("cluster:ha")).content.decode()
    assert "Not running:</strong> keepalived" in page


def test_keepalived_failing_to_start_is_shown_and_the_pair_stands(configuration, client, user):
    """ha.vrrp.configure raising (the placeholder does) leaves the pair made, with the reason."""
    NetworkConfiguration.objects.filter(pk=1).update(
        interfaces={"eth0": {"addresses": ["192.0.2.2/24"], "mtu": None}})
    VirtualService.objects.all().delete()
    FloatingIP.objects.all().delete()
    with pytest.MonkeyPatch.context() as patch:
        def broken(pair):
            raise NotImplementedError("ha.vrrp.configure is not written yet")

        patch.setattr(pairing.vrrp, "configure", broken)
        response = client.post(reverse("cluster:ha-peer-pair"), json.dumps({
            "username": "loadbalancer", "password": PASSWORD, "primary_ip": "192.0.2.1",
            "secondary_ip": "192.0.2.2", "fingerprint": "a" * 64, "version": __version__,
            "hostname": "lb1", "secret_part": "c" * 64, "virtual_router_id": 9}),
            content_type="application/json")
        assert response.status_code == 200
        pairing._configure_vrrp(Pair.load())  # what on_commit runs after the answer
    pair = Pair.load()
    assert pair.role == "secondary" and "not written yet" in pair.vrrp_error
