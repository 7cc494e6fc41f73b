"""System Overview, light and truthful (issue 11): worker liveness from heartbeats, a Layer 4
poll that costs a 204 while nothing changed, search and pages, and red rows with the reason
when traffic cannot flow. Against a real Redis on a unix socket of the test's own."""

import html
import json
import re
import time
from types import SimpleNamespace

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from clusters import runtime as clusters_runtime
from clusters import services, status
from clusters.models import ConfigGeneration, RealServer, VirtualService
from core import runtime
from core import tasks as core_tasks
from network.models import NetworkConfiguration

pytestmark = pytest.mark.django_db

GUIDE_PORTS = "12000,12100,12200,12300,12301,12950,12800"


@pytest.fixture
def store(redis_server, settings):
    """The runtime state in the test's Redis, empty; nothing remembered from another test."""
    settings.REDIS_URL = f"unix://{settings.REDIS_SOCKET}"
    client = redis_server
    client.flushall()
    status.forget_remembered()
    yield client
    status.forget_remembered()


@pytest.fixture
def admin(client, store):
    user = get_user_model().objects.create_user("loadbalancer", password="a-Long-test-pass")
    client.force_login(user)
    return client


@pytest.fixture
def interfaces():
    """The interfaces as the dataplane worker recorded them: the lab's."""
    network = NetworkConfiguration.load()
    network.interfaces = {"eth0": {"addresses": ["192.0.2.1/24"], "mtu": 1500},
                          "eth1": {"addresses": ["198.51.100.1/24"], "mtu": 1500}}
    network.save()
    return network


def guide_service(label="VNA", vip="198.51.100.100", server_ip="192.0.2.110", **fields):
    service = VirtualService(label=label, vip=vip, ports=GUIDE_PORTS, fallback_ip="192.0.2.120",
                             fallback_masq=True, **fields)
    service.save()
    RealServer.objects.create(service=service, label="PrimaryCluster", ip=server_ip)
    return service


def applied_everything(unplaced=()):
    """As the dataplane worker records it: the newest generation is live."""
    clusters_runtime.record_applied(ConfigGeneration.bump(), "full", 12.0, unplaced=unplaced)


def rows_of(response):
    """{data-service label: (class of its row, its state words)} of a Layer 4 table."""
    text = response.content.decode()
    found = {}
    for match in re.finditer(r'<tbody class="service" data-service="([^"]*)">.*?'
                             r'<tr class="vs ([^"]*)">.*?<td class="state">([^<]*)</td>',
                             text, re.S):
        found[html.unescape(match[1])] = (match[2], html.unescape(match[3]))
    return found


def server_row(response, label):
    text = response.content.decode()
    match = re.search(rf'<tr class="rs ([^"]*)" data-real-server="{re.escape(label)}">.*?'
                      r'<td class="state">([^<]*)</td>', text, re.S)
    return match[1], html.unescape(match[2])


def summary(response):
    text = re.search(r'<p class="layer4-summary" id="layer4-summary">(.*?)</p>',
                     response.content.decode(), re.S)[1]
    return html.unescape(" ".join(re.sub(r"<[^>]+>", "", text).split()))


def poll_url(response):
    return html.unescape(re.search(r'<div id="layer4" hx-get="([^"]+)"',
                                   response.content.decode())[1])


# Services panel: heartbeats

def services_row(response, name):
    text = response.content.decode()
    match = re.search(rf'<tr class="(\w+)" data-service="{name}">(.*?)</tr>', text, re.S)
    return match[1], " ".join(re.sub(r"<[^>]+>", " ", match[2]).split())


def test_a_worker_with_a_fresh_heartbeat_is_answering_and_one_without_is_red(admin, store):
    runtime.record_worker_heartbeat("checks@lb", ["checks"])
    response = admin.get(reverse("overview:services"))
    assert services_row(response, "queue-checks") == (
        "up", "Worker queue checks answering checks@lb")
    css, words = services_row(response, "queue-dataplane")
    assert css == "down" and "NO WORKER" in words
    assert "no worker consuming it sent a heartbeat in the last 10 s" in words
    assert services_row(response, "redis")[0] == "up"


def test_a_worker_that_dies_goes_red_once_its_heartbeat_expires(admin, store):
    runtime.record_worker_heartbeat("dataplane@lb", ["dataplane"])
    key = runtime.worker_heartbeat_key("dataplane", "dataplane@lb")
    # written every 3 s, gone 10 s after the last one: red within ~15 s with the 5 s poll
    assert 0 < store.ttl(key) <= runtime.WORKER_HEARTBEAT_TTL <= 10
    assert runtime.WORKER_HEARTBEAT_EVERY * 3 <= runtime.WORKER_HEARTBEAT_TTL
    assert services_row(admin.get(reverse("overview:services")), "queue-dataplane")[0] == "up"
    store.pexpire(key, 1)  # the worker was killed: nobody writes it again
    time.sleep(0.05)
    css, words = services_row(admin.get(reverse("overview:services")), "queue-dataplane")
    assert css == "down" and "NO WORKER" in words


def test_the_heartbeat_thread_writes_until_stopped_then_removes_its_keys(store):
    beating = runtime.WorkerHeartbeat("maintenance@lb", ["maintenance"], every=0.02)
    beating.start()
    key = runtime.worker_heartbeat_key("maintenance", "maintenance@lb")
    for _ in range(100):
        if store.exists(key):
            break
        time.sleep(0.01)
    first = float(store.get(key))
    time.sleep(0.1)
    assert float(store.get(key)) > first  # written again and again
    beating.stop()
    assert not beating.is_alive() and not store.exists(key)


def test_a_worker_starts_its_heartbeat_when_ready_and_stops_it_at_shutdown(store):
    consumer = SimpleNamespace(hostname="checks@lb", app=SimpleNamespace(amqp=SimpleNamespace(
        queues=SimpleNamespace(consume_from={"checks": object()}))))
    core_tasks.start_worker_heartbeat(sender=consumer)
    try:
        assert {q.name: q.workers for q in runtime.service_status().queues}["checks"] == \
            ["checks@lb"]
    finally:
        core_tasks.stop_worker_heartbeat(sender=None)
    assert [q.workers for q in runtime.service_status().queues] == [[], [], [], []]


def test_the_services_panel_asks_no_worker_and_answers_at_once(admin, store, monkeypatch):
    def no_broadcast(*args):
        raise AssertionError("System Overview must not broadcast a ping")

    monkeypatch.setattr(runtime, "workers_by_queue", no_broadcast)
    for queue in ("dataplane", "reader", "checks", "maintenance"):
        runtime.record_worker_heartbeat(f"{queue}@lb", [queue])
    runtime.record_beat_heartbeat(time.time())
    admin.get(reverse("overview:services"))
    started = time.perf_counter()
    response = admin.get(reverse("overview:services"))
    elapsed = time.perf_counter() - started
    assert [services_row(response, f"queue-{q}")[0]
            for q in ("dataplane", "reader", "checks", "maintenance")] == ["up"] * 4
    assert services_row(response, "beat") == ("up", "Scheduler (celery beat) running "
                                                    "last heartbeat 0 s ago")
    assert elapsed < 0.2  # a ping per request waited 1 s; the bench measures it over HTTPS


def test_the_runners_start_up_wait_still_asks_the_workers_themselves():
    answered = runtime.workers_by_queue(SimpleNamespace(control=SimpleNamespace(
        inspect=lambda timeout: SimpleNamespace(active_queues=lambda: {
            "dataplane@lb": [{"name": "dataplane"}], "checks@lb": [{"name": "checks"}]}))), 1.0)
    assert answered == {"dataplane": ["dataplane@lb"], "reader": [], "checks": ["checks@lb"],
                        "maintenance": []}


# Layer 4: the poll answers 204 while nothing changed

def test_an_unchanged_layer4_poll_gets_a_204_and_a_change_gets_the_table(admin, interfaces):
    service = guide_service()
    applied_everything()
    first = admin.get(reverse("overview:layer4"), HTTP_HX_REQUEST="true")
    assert first.status_code == 200
    url = poll_url(first)
    assert "digest=" in url
    again = admin.get(url, HTTP_HX_REQUEST="true")
    assert again.status_code == 204 and again.content == b""
    time.sleep(1.1)  # the page's clock moved on; the data did not
    assert admin.get(url, HTTP_HX_REQUEST="true").status_code == 204

    services.do_set_state(service.real_servers.get(), "halt", "test")
    changed = admin.get(url, HTTP_HX_REQUEST="true")
    assert changed.status_code == 200
    assert server_row(changed, "PrimaryCluster") == ("pending", "Online (halt): applying…")
    assert poll_url(changed) != url
    applied_everything()
    live = admin.get(poll_url(changed), HTTP_HX_REQUEST="true")
    assert server_row(live, "PrimaryCluster") == ("halt", "Online (halt)")
    assert admin.get(poll_url(live), HTTP_HX_REQUEST="true").status_code == 204


def test_the_digest_follows_connection_counts_and_health(admin, interfaces, store):
    service = guide_service()
    applied_everything()
    url = poll_url(admin.get(reverse("overview:layer4")))
    server = service.real_servers.get()
    clusters_runtime.record_connections({server.pk: 3})
    response = admin.get(url)
    assert response.status_code == 200
    assert re.search(r'<td class="conns">3</td>', response.content.decode())


# Layer 4: search and pages

@pytest.fixture
def many_services(interfaces):
    VirtualService.objects.bulk_create([
        VirtualService(label=f"service {i:03}", vip=f"198.51.100.{10 + i // 10}",
                       ports=str(20000 + i % 10)) for i in range(120)])
    RealServer.objects.bulk_create([
        RealServer(service=vs, label="node", ip="192.0.2.111")
        for vs in VirtualService.objects.all()])
    guide_service()
    applied_everything()


def test_the_overview_shows_fifty_services_a_page(admin, many_services):
    page = admin.get(reverse("overview:index"))
    assert len(rows_of(page)) == 50 and list(rows_of(page))[0] == "VNA"  # by label
    text = page.content.decode()
    assert "121 virtual services" in text
    assert "Services 1–50 of 121 · page 1 of 3" in text
    last = admin.get(reverse("overview:layer4"), {"page": "3"})
    assert list(rows_of(last)) == [f"service {i:03}" for i in range(99, 120)]
    assert "‹ Previous" in last.content.decode() and "Next ›" not in last.content.decode()
    beyond = admin.get(reverse("overview:layer4"), {"page": "99"})
    assert "page 3 of 3" in beyond.content.decode()


def test_the_search_box_finds_the_guides_vna(admin, many_services):
    page = admin.get(reverse("overview:index")).content.decode()
    assert 'id="layer4-q" name="q"' in page
    for needle in ("VNA", "vna", "198.51.100.100", "PrimaryCluster", "192.0.2.110"):
        found = admin.get(reverse("overview:layer4"), {"q": needle}, HTTP_HX_REQUEST="true")
        assert list(rows_of(found)) == ["VNA"], needle
        assert 'data-real-server="PrimaryCluster"' in found.content.decode()
    nothing = admin.get(reverse("overview:layer4"), {"q": "no such thing"})
    assert rows_of(nothing) == {}
    assert "No virtual service matches “no such thing”" in nothing.content.decode()
    # without JavaScript the form reloads the page with the search
    assert list(rows_of(admin.get(reverse("overview:index"), {"q": "VNA"}))) == ["VNA"]


def test_the_poll_and_the_buttons_keep_the_search(admin, many_services):
    found = admin.get(reverse("overview:layer4"), {"q": "VNA"})
    assert "q=VNA" in poll_url(found)
    assert admin.get(poll_url(found)).status_code == 204
    server = RealServer.objects.get(label="PrimaryCluster")
    text = found.content.decode()
    button = re.search(r'hx-post="([^"]+)"[^>]*>Halt<', text)[1]
    assert html.unescape(button) == \
        reverse("overview:set-state", args=[server.pk]) + "?q=VNA"
    response = admin.post(html.unescape(button), {"state": "halt"}, HTTP_HX_REQUEST="true")
    assert list(rows_of(response)) == ["VNA"]


# Truthful status: red rows with the reason

def test_an_unplaced_vip_turns_its_service_red_with_the_reason(admin, interfaces):
    guide_service(label="Elsewhere", vip="203.0.113.10")
    guide_service(label="VNA", vip="198.51.100.100")
    applied_everything(unplaced=["203.0.113.10"])
    rows = rows_of(admin.get(reverse("overview:index")))
    assert rows["Elsewhere"] == (
        "down", "Down: VIP 203.0.113.10 could not be placed: no interface has a subnet "
                "holding it")
    assert rows["VNA"] == ("up", "Online")


def test_an_unplaced_floating_ip_is_said_on_the_overview(admin, interfaces):
    services.do_add_floating_ip("203.0.113.254", "test")
    applied_everything(unplaced=["203.0.113.254"])
    text = admin.get(reverse("overview:index")).content.decode()
    assert "203.0.113.254 (not placed: no interface has a subnet holding it)" in text


def test_a_real_server_no_interface_reaches_is_red_with_the_reason(admin, interfaces):
    guide_service(server_ip="203.0.113.5")
    applied_everything()
    response = admin.get(reverse("overview:index"))
    words = "203.0.113.5 is on no interface's subnet and no static route or default " \
            "gateway leads to it"
    assert server_row(response, "PrimaryCluster") == ("down", f"Down: {words}")
    assert rows_of(response)["VNA"] == (
        "down", f"Down: real server “PrimaryCluster” cannot be reached: {words}")
    assert summary(response).startswith("1 virtual service, 1 with a red row")

    # a static route, or a default gateway, reaches it: green again
    interfaces.routes = [{"destination": "203.0.113.0/24", "gateway": "192.0.2.254"}]
    interfaces.save()
    assert rows_of(admin.get(reverse("overview:index")))["VNA"] == ("up", "Online")
    interfaces.routes, interfaces.gateway4 = [], "192.0.2.254"
    interfaces.save()
    assert rows_of(admin.get(reverse("overview:index")))["VNA"] == ("up", "Online")


def test_a_second_server_out_of_reach_makes_the_service_partly_down(admin, interfaces):
    service = guide_service()
    RealServer.objects.create(service=service, label="Far", ip="203.0.113.5")
    applied_everything()
    response = admin.get(reverse("overview:index"))
    assert server_row(response, "PrimaryCluster") == ("up", "Online")
    css, words = rows_of(response)["VNA"]
    assert css == "down"
    assert words.startswith("Partly down: new connections sent to real server “Far” cannot "
                            "be reached: 203.0.113.5 is on no interface's subnet")


def test_emptied_interfaces_turn_every_server_red(admin, interfaces):
    guide_service()
    applied_everything()
    interfaces.interfaces = {"eth0": {"addresses": [], "mtu": 1500},
                             "eth1": {"addresses": [], "mtu": 1500}}
    interfaces.save()
    assert rows_of(admin.get(reverse("overview:index")))["VNA"][0] == "down"


def test_before_the_interfaces_are_recorded_no_server_is_called_unreachable(admin):
    guide_service(server_ip="203.0.113.5")
    applied_everything()
    assert rows_of(admin.get(reverse("overview:index")))["VNA"] == ("up", "Online")


def test_a_vip_that_is_also_a_real_servers_address_is_red(admin, interfaces):
    guide_service()
    # as saved before the configuration-wide rule refused it (the ORM skips the forms)
    guide_service(label="Clash", vip="192.0.2.110", server_ip="192.0.2.111")
    applied_everything()
    rows = rows_of(admin.get(reverse("overview:index")))
    assert rows["Clash"] == ("down",
                             "Down: VIP 192.0.2.110 is also the real server “PrimaryCluster” "
                             "of “VNA”")
    assert rows["VNA"][0] == "down"  # its real server's address answers on the appliance
    assert "is also the VIP of virtual service “Clash”" in rows["VNA"][1]


def test_only_red_rows_are_listed_when_asked(admin, many_services):
    guide_service(label="Broken", vip="198.51.100.250", server_ip="203.0.113.5")
    status.forget_remembered()
    response = admin.get(reverse("overview:layer4"), {"problems": "1"})
    assert list(rows_of(response)) == ["Broken"]
    assert "122 virtual services, 1 with a red row. Showing 1 with a red row." in \
        summary(response)


def test_the_unplaced_addresses_are_kept_apart_from_the_status_older_releases_read(store):
    clusters_runtime.record_applied(3, "full", 5.0, ["warning"], unplaced=["203.0.113.10"])
    raw = json.loads(store.get(clusters_runtime.STATUS_KEY))
    assert "unplaced" not in raw  # 0.1.0 builds ApplyStatus(**raw) after a rollback
    status_now = clusters_runtime.read_status()
    assert status_now.unplaced == {"203.0.113.10"} and status_now.applied_generation == 3
    clusters_runtime.record_failed(4, "refused")
    assert clusters_runtime.read_status().unplaced == {"203.0.113.10"}
    clusters_runtime.record_applied(5, "difference", 1.0)
    assert clusters_runtime.read_status().unplaced == frozenset()
