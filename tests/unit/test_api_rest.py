"""lbadmin's REST API (/api/v1/) through Django's test client with an API key: every
resource, the generation on every answer, one apply per write, refusals in the WebUI forms'
own words (each WebUI refusal has its API twin, compared word for word), bad bodies, the
roles table covering every operation, the OpenAPI document and its page."""

import html as html_module
import json
import os
import subprocess
import sys

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse

from api import keys, lbcli
from api import views as api_views
from api.models import ApiKey
from api.rest import api
from clusters import runtime
from clusters import views as cluster_views
from clusters.models import ConfigGeneration, FloatingIP, RealServer, VirtualService
from core import roles
from core.models import AuditEntry
from ha import secondary
from healthchecks.models import HealthCheckScript
from maintenance import users
from maintenance.models import Revision
from network import services as network_services
from network import views as network_views
from network.models import NetworkConfiguration

pytestmark = pytest.mark.django_db
PASSWORD = "a-Long-test-pass"
GUIDE_PORTS = "12000,12100,12200,12300,12301,12950,12800"
# the WebUI's own test values (tests/unit/test_layer4_webui.py), posted to both
GOOD_SERVICE = {
    "label": "VNA", "vip": "198.51.100.100", "ports": GUIDE_PORTS,
    "protocol": "tcp", "forwarding": "nat", "scheduler": "wrr", "persistence_timeout": "300",
    "check_type": "on", "fallback_ip": "192.0.2.120", "fallback_port": "0",
    "fallback_masq": "on", "check_request": "/", "check_interval": "30", "check_timeout": "5",
    "failure_count": "10", "on_failure": "keep",
}
GOOD_SERVER = {"label": "PrimaryCluster", "ip": "192.0.2.110", "port": "", "weight": "100",
               "min_connections": "0", "max_connections": "0"}
INTERFACES = {"eth0": {"addresses": ["192.0.2.1/24"], "mtu": None},
              "eth1": {"addresses": ["198.51.100.1/24"], "mtu": None}}


@pytest.fixture(autouse=True)
def redis_down(settings, tmp_path):
    settings.REDIS_URL = f"unix://{tmp_path}/nothing.sock"
    settings.REDIS_SOCKET = tmp_path / "nothing.sock"
    settings.CELERY_BROKER_URL = f"redis+socket://{tmp_path}/nothing.sock"


@pytest.fixture
def config_user():
    return get_user_model().objects.create_user("loadbalancer", password=PASSWORD)


class Api:
    """A client for /api/v1/ with a key."""

    def __init__(self, raw):
        self.client, self.headers = Client(), {"HTTP_AUTHORIZATION": f"Bearer {raw}"}

    def get(self, path):
        return self.client.get(f"/api/v1{path}", **self.headers)

    def send(self, method, path, body=None, raw=None, content_type="application/json"):
        data = raw if raw is not None else ("" if body is None else json.dumps(body))
        return getattr(self.client, method)(f"/api/v1{path}", data,
                                            content_type=content_type, **self.headers)

    def post(self, path, body=None, **kwargs):
        return self.send("post", path, body, **kwargs)

    def patch(self, path, body=None, **kwargs):
        return self.send("patch", path, body, **kwargs)

    def delete(self, path):
        return self.client.delete(f"/api/v1{path}", **self.headers)


@pytest.fixture
def rest(config_user):
    return Api(keys.do_create_key(ApiKey(user=config_user, name="tests"), config_user))


@pytest.fixture
def webui(config_user):
    client = Client()
    client.force_login(config_user)
    return client


@pytest.fixture
def interfaces():
    stored = NetworkConfiguration.load()
    stored.interfaces = INTERFACES
    stored.save()


def field_error(response, field):
    """The WebUI's error shown in the field's own block (as tests/unit/test_layer4_webui)."""
    html = response.content.decode()
    start = html.index(f'id="field-{field}"')
    block = html[start:html.index("</div>", start)]
    if "field-error" not in block:
        return ""
    return html_module.unescape(block.split('class="field-error" role="alert">')[1]
                                .split("</p>")[0])


def api_error(response, field):
    assert response.status_code == 400, response.content
    return response.json()["errors"][field][0]


# -- the resources ------------------------------------------------------------------------

def test_the_guides_deployment_through_the_api_saves_and_applies_once_per_change(
        rest, sent, interfaces, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        created = rest.post("/virtual-services", {
            "label": "VNA", "vip": "198.51.100.100", "ports": GUIDE_PORTS,
            "fallback_ip": "192.0.2.120", "fallback_port": 0, "fallback_masq": True})
    assert created.status_code == 201, created.content
    service = created.json()
    assert service["ports"] == GUIDE_PORTS and service["fallback_masq"] is True
    # the WebUI's defaults where the body says nothing
    assert (service["protocol"], service["forwarding"], service["check_interval"],
            service["failure_count"]) == ("tcp", "nat", 30, 10)
    assert created["X-Config-Generation"] == "1" and sent == [{}]
    with django_capture_on_commit_callbacks(execute=True):
        server = rest.post(f"/virtual-services/{service['id']}/real-servers",
                           {"label": "PrimaryCluster", "ip": "192.0.2.110"})
    assert server.status_code == 201, server.content
    assert server.json()["weight"] == 100 and server.json()["port"] is None
    assert server["X-Config-Generation"] == "2" and len(sent) == 2
    with django_capture_on_commit_callbacks(execute=True):
        fip = rest.post("/floating-ips", {"address": "192.0.2.254"})
    assert fip.status_code == 201 and fip["X-Config-Generation"] == "3"
    assert [s["label"] for s in rest.get("/virtual-services").json()] == ["VNA"]
    assert rest.get(f"/virtual-services/{service['id']}").json()["vip"] == "198.51.100.100"
    assert rest.get("/real-servers?label=PrimaryCluster").json()[0]["service_label"] == "VNA"
    assert rest.get("/floating-ips").json() == [{"id": fip.json()["id"],
                                                 "address": "192.0.2.254"}]
    assert [e.action.split(" (")[0] for e in AuditEntry.objects.order_by("id")
            if e.user.endswith("(API key tests)")] == [
        "added virtual service VNA", "added real server PrimaryCluster",
        "added floating IP 192.0.2.254"]


def test_a_patch_changes_only_what_it_names(rest, interfaces):
    service = rest.post("/virtual-services", GOOD_SERVICE).json()
    changed = rest.patch(f"/virtual-services/{service['id']}", {"scheduler": "wlc"})
    assert changed.status_code == 200
    stored = VirtualService.objects.get()
    assert stored.scheduler == "wlc" and stored.ports == GUIDE_PORTS and stored.fallback_masq
    server = rest.post(f"/virtual-services/{service['id']}/real-servers", GOOD_SERVER).json()
    assert rest.patch(f"/real-servers/{server['id']}", {"weight": 50}).json()["weight"] == 50
    assert RealServer.objects.get().ip == "192.0.2.110"


def test_drain_halt_online_set_the_state_and_say_the_generation(rest, sent,
                                                                django_capture_on_commit_callbacks):
    service = VirtualService.objects.create(label="VNA", vip="198.51.100.100", ports="80")
    server = service.real_servers.create(label="PrimaryCluster", ip="192.0.2.110")
    for action in ("drain", "halt", "online"):
        with django_capture_on_commit_callbacks(execute=True):
            answer = rest.post(f"/real-servers/{server.pk}/{action}")
        assert answer.status_code == 200
        assert answer.json()["state"] == action
        assert answer.json()["generation"] == ConfigGeneration.current()
        server.refresh_from_db()
        assert server.state == action
    assert len(sent) == 3
    assert rest.post(f"/real-servers/{server.pk}/explode").status_code == 400
    assert rest.post("/real-servers/999/halt").status_code == 404
    server.refresh_from_db()
    assert server.state == "online"


def test_deletes_answer_204_and_unknown_ids_404_in_words(rest, interfaces):
    service = rest.post("/virtual-services", GOOD_SERVICE).json()
    server = rest.post(f"/virtual-services/{service['id']}/real-servers", GOOD_SERVER).json()
    fip = rest.post("/floating-ips", {"address": "192.0.2.254"}).json()
    assert rest.delete(f"/real-servers/{server['id']}").status_code == 204
    assert rest.delete(f"/floating-ips/{fip['id']}").status_code == 204
    assert rest.delete(f"/virtual-services/{service['id']}").status_code == 204
    missing = rest.get(f"/virtual-services/{service['id']}")
    assert missing.status_code == 404 and missing.json()["errors"]["__all__"]
    assert not VirtualService.objects.exists() and not FloatingIP.objects.exists()


def test_health_check_scripts_are_made_used_and_not_deleted_while_used(rest):
    made = rest.post("/health-check-scripts", {"name": "all-ports",
                                               "script": "#!/bin/sh\r\nexit 0\r\n"})
    assert made.status_code == 201, made.content
    script = HealthCheckScript.objects.get()
    assert script.script == "#!/bin/sh\nexit 0"  # the form's clean: CRLF made LF
    rest.post("/virtual-services", GOOD_SERVICE | {"check_type": "external",
                                                   "check_script": script.pk})
    refused = rest.delete(f"/health-check-scripts/{script.pk}")
    assert api_error(refused, "__all__") == (
        "all-ports cannot be deleted: it is used by the virtual service \u201cVNA\u201d. "
        "Choose another check there first.")
    assert HealthCheckScript.objects.exists()
    assert api_error(rest.post("/health-check-scripts", {"name": "empty", "script": ""}),
                     "script") == "The script is empty."


def test_hostname_and_dns_are_read_and_changed_through_the_form(rest):
    assert rest.get("/network/hostname-dns").json()["hostname"] == "lbadmin"
    refused = rest.patch("/network/hostname-dns", {"hostname": "-bad-"})
    assert api_error(refused, "hostname").startswith("A hostname is letters, digits")
    changed = rest.patch("/network/hostname-dns", {"hostname": "lb1", "dns1": "192.0.2.53"})
    assert changed.status_code == 200
    assert changed.json()["warnings"][0].startswith("Saved, but not written yet")  # no worker
    stored = NetworkConfiguration.load()
    assert (stored.hostname, stored.dns) == ("lb1", ["192.0.2.53"])
    assert rest.get("/network/routes").json() == {"gateway4": "", "gateway6": "", "routes": []}
    interfaces = rest.get("/network/interfaces").json()
    assert interfaces["live"] is None and interfaces["error"]


# -- Network Interface Configuration (the guide's 6.1.1) ------------------------------------

LIVE = [
    {"name": "lo", "kind": "", "mtu": 65536, "addresses": ["127.0.0.1/8"],
     "marked": [{"cidr": "127.0.0.1/8", "role": ""}]},
    {"name": "eth0", "kind": "veth", "mtu": 1500, "addresses": ["192.0.2.1/24"],
     "marked": [{"cidr": "192.0.2.1/24", "role": ""}]},
    {"name": "eth1", "kind": "veth", "mtu": 1500, "addresses": [], "marked": []},
]


@pytest.fixture
def network_worker(monkeypatch, sent):
    """The dataplane worker reads LIVE (for the API and the page alike) and takes every
    network change (the configs it was given are recorded)."""
    applied = []
    monkeypatch.setattr(network_services, "live_interfaces", lambda: (LIVE, ""))
    monkeypatch.setattr(network_views, "live_interfaces", lambda: (LIVE, ""))
    monkeypatch.setattr(network_services, "ask_dataplane",
                        lambda task, **kwargs: applied.append(kwargs["config"]) or {"ok": True})
    return applied


def test_interfaces_are_configured_through_the_pages_form_and_action(rest, network_worker):
    changed = rest.patch("/network/interfaces", {"eth1": {"addresses": ["198.51.100.1/24"]}})
    assert changed.status_code == 200, changed.content
    assert changed.json()["configured"]["interfaces"] == {
        "eth0": {"addresses": ["192.0.2.1/24"], "mtu": 1500},  # as the page showed it
        "eth1": {"addresses": ["198.51.100.1/24"], "mtu": 1500}}
    assert network_worker[0]["interfaces"]["eth1"]["addresses"] == ["198.51.100.1/24"]
    assert AuditEntry.objects.filter(user="loadbalancer (API key tests)",
                                     action__contains="configured the network").exists()
    assert rest.patch("/network/interfaces", {"eth1": {"mtu": 9000}}).json()["configured"][
        "interfaces"]["eth1"] == {"addresses": ["198.51.100.1/24"], "mtu": 9000}


INTERFACE_REFUSALS = ["198.51.100.1", "198.51.100.300/24", "198.51.100.0/24",
                      "192.0.2.1/24", "198.51.100.50/24", "10.0.0.1/4"]


@pytest.mark.parametrize("address", INTERFACE_REFUSALS)
def test_each_interface_refusal_has_its_api_twins(rest, webui, network_worker, address):
    """The page, the REST API and lbcli refuse an address in the same words (an address
    already on another interface, one a floating IP holds, a bad CIDR...)."""
    FloatingIP.objects.create(address="198.51.100.50")
    words = field_error(webui.post(reverse("local:interfaces"), {
        "configure": "1", "addresses_eth0": "192.0.2.1/24", "mtu_eth0": "1500",
        "addresses_eth1": address, "mtu_eth1": "1500"}), "addresses_eth1")
    assert words, f"the WebUI accepted {address!r}"
    assert api_error(rest.patch("/network/interfaces", {"eth1": {"addresses": [address]}}),
                     "addresses_eth1") == words
    answers, _ = lbcli.run([{"action": "interface", "interface": "eth1", "ip": address}],
                           "tester", roles.CONFIG)
    assert (answers[0]["status"], answers[0]["error"]) == ("failed", f"ip: {words}")
    assert network_worker == [] and NetworkConfiguration.load().interfaces == {}


@pytest.mark.parametrize(("body", "field", "words"), [
    ({}, "__all__", "Name the interfaces that change"),
    ({"eth1": "198.51.100.1/24"}, "eth1", "Give the interface's settings as an object"),
    ({"eth1": {"addresses": "198.51.100.1/24"}}, "addresses_eth1", "Give the addresses as a"),
    ({"eth1": {"address": ["198.51.100.1/24"]}}, "eth1", "There is no setting 'address'"),
    ({"eth9": {"addresses": ["198.51.100.1/24"]}}, "__all__",
     "\u201ceth9\u201d is not an interface of this appliance: eth0, eth1."),
    ({"eth1": {"mtu": 20}}, "mtu_eth1", "The MTU must be between 68 and 9216."),
])
def test_a_bad_interfaces_body_is_refused_in_words(rest, network_worker, body, field, words):
    assert api_error(rest.patch("/network/interfaces", body), field).startswith(words)
    assert network_worker == [] and NetworkConfiguration.load().interfaces == {}


def test_an_interface_change_the_guard_would_hold_is_refused(rest, network_worker):
    stored = NetworkConfiguration.load()
    stored.interfaces = INTERFACES
    stored.save()
    rest.post("/virtual-services", GOOD_SERVICE)
    refused = rest.patch("/network/interfaces", {"eth0": {"addresses": []}})
    assert refused.status_code == 400
    errors = refused.json()["errors"]["__all__"]
    assert errors[0].startswith("This change removes every address of 192.0.2.0/24 from eth0")
    assert errors[-1] == lbcli.HELD_IN_THE_WEBUI
    assert network_worker == [] and NetworkConfiguration.load().interfaces == INTERFACES


def test_only_a_config_key_may_configure_interfaces(rest, config_user, network_worker):
    assert roles.API["api-v1:interfaces"]["PATCH"] == "local:interfaces"
    maint = Api(keys.do_create_key(ApiKey(user=users.do_add_user(
        "test", "a-maint-user", PASSWORD, roles.MAINT), name="m"), config_user))
    assert maint.get("/network/interfaces").status_code == 200
    refused = maint.patch("/network/interfaces", {"eth1": {"addresses": ["198.51.100.1/24"]}})
    assert refused.status_code == 403
    assert network_worker == [] and NetworkConfiguration.load().interfaces == {}


def test_a_backup_is_downloaded_and_restored_by_config_only(rest, interfaces, config_user):
    rest.post("/virtual-services", GOOD_SERVICE)
    xml = rest.get("/backup")
    assert xml.status_code == 200 and xml["Content-Type"] == "application/xml"
    assert b'label="VNA"' in xml.content or b"<label>VNA</label>" in xml.content
    VirtualService.objects.all().delete()
    restored = rest.post("/backup/restore", raw=xml.content, content_type="application/xml")
    assert restored.status_code == 200, restored.content
    assert VirtualService.objects.get().label == "VNA"
    broken = rest.post("/backup/restore", raw=b"<nope", content_type="application/xml")
    assert api_error(broken, "backup").startswith("Not restored:")
    assert api_error(broken, "backup").endswith("Nothing was changed.")
    too_big = rest.post("/backup/restore", raw=b" " * (10 * 1024 * 1024 + 1),
                        content_type="application/xml")
    assert too_big.status_code == 413 and "larger than 10 MiB" in too_big.json()["errors"][
        "backup"][0]
    assert VirtualService.objects.get().label == "VNA"
    maint = Api(keys.do_create_key(ApiKey(user=users.do_add_user(
        "test", "a-maint-user", PASSWORD, roles.MAINT), name="m"), config_user))
    assert maint.get("/backup").status_code == 200
    assert maint.post("/backup/restore", raw=xml.content,
                      content_type="application/xml").status_code == 403


def test_services_updates_and_apply_state_say_what_is_down(rest):
    assert rest.get("/services").json() == {"supervisor": False, "services": []}
    refused = rest.post("/services/web/restart")
    assert refused.status_code == 503 and "Nothing was restarted" in \
        refused.json()["errors"]["__all__"][0]
    assert rest.post("/services/nothing/restart").status_code == 404
    offer = rest.get("/updates").json()
    assert offer["checking_enabled"] is False and offer["available_version"] is None
    check = rest.post("/updates/check")
    assert "The online update check is off" in api_error(check, "__all__")
    assert "no update is on offer" in api_error(rest.post("/updates/install"), "__all__")
    assert rest.get("/updates/jobs").json() == []
    state = rest.get("/apply-state").json()
    assert state["state"] == "unknown" and state["error"].startswith("Redis does not answer")


def test_the_apply_state_says_applied_once_the_generation_is_live(rest, monkeypatch):
    VirtualService.objects.create(label="VNA", vip="198.51.100.100", ports="80")
    ConfigGeneration.bump()
    monkeypatch.setattr(runtime, "read_status",
                        lambda client=None: runtime.ApplyStatus(applied_generation=0))
    answer = rest.get("/apply-state")
    assert answer.json()["state"] == "applying"
    assert (answer["X-Config-Generation"], answer["X-Config-Applied"]) == ("1", "0")
    monkeypatch.setattr(runtime, "read_status",
                        lambda client=None: runtime.ApplyStatus(applied_generation=1))
    assert rest.get("/apply-state").json()["state"] == "applied"
    monkeypatch.setattr(runtime, "read_status", lambda client=None: runtime.ApplyStatus(
        applied_generation=0, failed_generation=1, error="nft said no"))
    failed = rest.get("/apply-state").json()
    assert (failed["state"], failed["error"]) == ("failed", "nft said no")


def test_a_secondary_refuses_changes_in_the_webuis_words(rest, monkeypatch):
    monkeypatch.setattr(secondary, "primary_of_this_secondary", lambda: "192.0.2.2")
    refused = rest.post("/virtual-services", GOOD_SERVICE)
    assert refused.status_code == 403
    assert refused.json()["errors"]["__all__"] == [
        f"Not changed: {secondary.notice('192.0.2.2')}"]
    assert not VirtualService.objects.exists()


# -- bad bodies -----------------------------------------------------------------------------

@pytest.mark.parametrize(("raw", "field", "words"), [
    (b"{not json", "__all__", "The body is not JSON"),
    (b"[1, 2]", "__all__", "The body must be a JSON object"),
    (json.dumps(GOOD_SERVICE | {"colour": "red"}).encode(), "colour", "There is no field"),
    (json.dumps(GOOD_SERVICE | {"ports": [80, 81]}).encode(), "ports", "Enter one value"),
    (json.dumps(GOOD_SERVICE | {"check_interval": 1.5}).encode(), "check_interval",
     "Enter the interval as a whole number of seconds."),
    (json.dumps(GOOD_SERVICE | {"vip": None}).encode(), "vip",
     "Enter the address clients will connect to."),
])
def test_a_malformed_body_is_refused_in_words_and_nothing_changes(rest, raw, field, words):
    answer = rest.post("/virtual-services", raw=raw)
    assert words in api_error(answer, field)
    assert not VirtualService.objects.exists() and ConfigGeneration.current() == 0


def test_a_body_above_djangos_limit_is_refused_413(rest, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    answer = rest.post("/virtual-services", GOOD_SERVICE | {"label": "x" * 2000})
    assert answer.status_code == 413
    assert "larger than 1000 bytes" in answer.json()["errors"]["__all__"][0]
    assert not VirtualService.objects.exists()


# -- every WebUI refusal has its API twin, word for word ------------------------------------

SERVICE_REFUSALS = [
    ("vip", "198.51.100.300"), ("vip", "224.0.0.1"), ("ports", ""), ("ports", "0"),
    ("ports", "65536"), ("ports", "80,80"), ("ports", "800-900,850"), ("ports", "900-800"),
    ("ports", "http"), ("ports", "80,,81"), ("persistence_timeout", "0"),
    ("fallback_ip", "192.0.2"), ("fallback_ip", "198.51.100.100"), ("fallback_port", "70000"),
    ("label", ""), ("check_interval", "x"), ("check_timeout", "x"), ("failure_count", "x"),
    ("alert_address", "nobody"), ("check_request", "/a b"), ("check_host", "a\r\nX: y"),
    # held by another object (core.configuration.address_clash)
    ("vip", "192.0.2.110"), ("vip", "192.0.2.254"), ("vip", "192.0.2.1"),
    ("fallback_ip", "192.0.2.254"),
]


@pytest.fixture
def vna(webui, interfaces):
    """The guide's VNA with PrimaryCluster and the floating IP, saved through the WebUI."""
    webui.post(reverse("cluster:virtual-service-add"), GOOD_SERVICE)
    service = VirtualService.objects.get()
    webui.post(reverse("cluster:real-server-add", args=[service.pk]), GOOD_SERVER)
    FloatingIP.objects.create(address="192.0.2.254")
    return service


def snapshot():
    return (list(VirtualService.objects.values()), list(RealServer.objects.values()),
            list(FloatingIP.objects.values()), ConfigGeneration.current())


@pytest.mark.parametrize(("field", "value"), SERVICE_REFUSALS)
def test_each_virtual_service_refusal_has_its_api_twin(rest, webui, vna, field, value):
    body = GOOD_SERVICE | {"label": "Other", "vip": "198.51.100.101", "fallback_ip": ""} | \
        {field: value}
    before = snapshot()
    words = field_error(webui.post(reverse("cluster:virtual-service-add"), body), field)
    assert words, f"the WebUI accepted {field}={value!r}"
    assert api_error(rest.post("/virtual-services", body), field) == words
    assert api_error(rest.patch(f"/virtual-services/{vna.pk}", {field: value}), field) == \
        field_error(webui.post(reverse("cluster:virtual-service-edit", args=[vna.pk]),
                               GOOD_SERVICE | {field: value}), field)
    assert snapshot() == before


def test_a_taken_label_and_taken_ports_have_their_api_twins(rest, webui, vna):
    for changes, field in (({"vip": "198.51.100.101"}, "label"),
                           ({"label": "Other", "ports": "800-900,12950"}, "ports")):
        body = GOOD_SERVICE | changes
        words = field_error(webui.post(reverse("cluster:virtual-service-add"), body), field)
        assert words and api_error(rest.post("/virtual-services", body), field) == words
    assert VirtualService.objects.count() == 1


SERVER_REFUSALS = [
    ("ip", "192.0.2.999"), ("ip", "198.51.100.100"), ("port", "0"), ("port", "65536"),
    ("weight", "65536"), ("weight", "-1"), ("weight", "heavy"), ("label", "PrimaryCluster"),
    ("ip", "192.0.2.254"), ("ip", "192.0.2.1"),
    ("max_connections", "x"),
]


@pytest.mark.parametrize(("field", "value"), SERVER_REFUSALS)
def test_each_real_server_refusal_has_its_api_twin(rest, webui, vna, field, value):
    body = GOOD_SERVER | {"label": "Second", "ip": "192.0.2.111"} | {field: value}
    before = snapshot()
    words = field_error(webui.post(reverse("cluster:real-server-add", args=[vna.pk]), body),
                        field)
    assert words, f"the WebUI accepted {field}={value!r}"
    assert api_error(rest.post(f"/virtual-services/{vna.pk}/real-servers", body), field) == \
        words
    assert snapshot() == before


def test_a_minimum_above_the_maximum_has_its_api_twin(rest, webui, vna):
    body = GOOD_SERVER | {"label": "Second", "ip": "192.0.2.111", "min_connections": "10",
                          "max_connections": "5"}
    words = field_error(webui.post(reverse("cluster:real-server-add", args=[vna.pk]), body),
                        "min_connections")
    assert "cannot be above the maximum" in words
    assert api_error(rest.post(f"/virtual-services/{vna.pk}/real-servers", body),
                     "min_connections") == words


@pytest.mark.parametrize("address", [
    "192.0.2.254",  # already added
    "192.0.2.110", "192.0.2.120", "198.51.100.100", "192.0.2.1",  # held by another object
    "203.0.113.5",  # outside every connected subnet
    "192.0.2.255", "192.0.2.0",  # broadcast, network
    "192.0.2", "",  # not an address
])
def test_each_floating_ip_refusal_has_its_api_twin(rest, webui, vna, monkeypatch, address):
    monkeypatch.setattr(cluster_views, "live_interfaces", lambda: ([], ""))
    before = snapshot()
    words = field_error(webui.post(reverse("cluster:floating-ips"), {"address": address}),
                        "address")
    assert words, f"the WebUI accepted {address!r}"
    assert api_error(rest.post("/floating-ips", {"address": address}), "address") == words
    assert snapshot() == before


# -- the roles table covers every operation; the document -----------------------------------

def test_every_operation_is_in_the_roles_table_with_its_method():
    """A new operation without a rule would be refused to everyone: this names it."""
    served = {}
    for pattern in api.urls[0]:
        if pattern.name in ("openapi-json", "api-root"):
            continue
        # ninja's view for a path closes over its PathView, which lists the operations
        path_view = next(cell.cell_contents for cell in pattern.callback.__closure__
                         if hasattr(cell.cell_contents, "operations"))
        methods = {method for op in path_view.operations for method in op.methods}
        served.setdefault(f"api-v1:{pattern.name}", set()).update(methods)
    assert served, "no operations found"
    for name, methods in served.items():
        assert name in roles.API, f"{name} is not in core.roles.API"
        assert methods == set(roles.API[name]), name
        for webui_name in roles.API[name].values():
            assert webui_name in roles.PERMISSIONS, webui_name


def test_the_openapi_document_needs_a_key_or_a_login_and_describes_the_forms(rest, webui):
    assert Client().get("/api/v1/openapi.json").status_code == 401

    def no_repeats(pairs):  # Swagger UI refuses a document with a key twice in one object
        names = [name for name, _ in pairs]
        assert len(names) == len(set(names)), names
        return dict(pairs)

    document = json.loads(rest.get("/openapi.json").content, object_pairs_hook=no_repeats)
    assert document["openapi"].startswith("3.")
    assert webui.get("/api/v1/openapi.json").status_code == 200
    body = document["paths"]["/api/v1/virtual-services"]["post"]["requestBody"]
    schema = body["content"]["application/json"]["schema"]
    assert schema["properties"]["protocol"]["enum"] == ["tcp", "udp", "tcpudp"] or \
        "tcp" in schema["properties"]["protocol"]["enum"]
    assert schema["properties"]["check_interval"]["default"] == 30
    assert set(schema["required"]) >= {"label", "vip", "ports"}
    assert document["components"]["securitySchemes"]["ApiKeyAuth"]["scheme"] == "bearer"


def test_the_docs_page_is_a_webui_page_with_the_appliances_own_swagger_ui(webui):
    page = webui.get(reverse("support:rest-api"))
    html = page.content.decode()
    assert page.status_code == 200
    assert "/lbadmin/static/ninja/swagger-ui-bundle.js" in html
    assert "/lbadmin/static/ninja/swagger-ui-init.js" in html
    assert '<script id="swagger-settings" type="application/json">' in html
    assert "cdn" not in html.lower()
    for asset in ("swagger-ui-bundle.js", "swagger-ui-init.js", "swagger-ui.css"):
        served = webui.get(f"/lbadmin/static/ninja/{asset}")
        assert served.status_code == 200, asset
    assert reverse("support:rest-api") in webui.get(reverse("support:links")).content.decode()
    assert reverse("support:rest-api") in webui.get(reverse("local:portal")).content.decode()
    assert Client().get(reverse("support:rest-api")).status_code == 302  # the login


# -- a batch: one transaction, one generation, one apply, one revision ----------------------

def guide_batch(server_ip="192.0.2.110"):
    return {"operations": [
        {"method": "POST", "path": "/virtual-services", "body": {
            "label": "VNA", "vip": "198.51.100.100", "ports": GUIDE_PORTS,
            "fallback_ip": "192.0.2.120", "fallback_port": 0, "fallback_masq": True}},
        {"method": "POST", "path": "/virtual-services/$0/real-servers",
         "body": {"label": "PrimaryCluster", "ip": server_ip}},
        {"method": "POST", "path": "/floating-ips", "body": {"address": "192.0.2.254"}},
        {"method": "POST", "path": "/real-servers/$1/drain"},
    ]}


def test_a_batch_is_one_generation_one_apply_and_one_revision(
        rest, sent, interfaces, django_capture_on_commit_callbacks):
    revisions = Revision.objects.count()
    with django_capture_on_commit_callbacks(execute=True):
        answer = rest.post("/batch", guide_batch())
    assert answer.status_code == 200, answer.content
    assert [r["status"] for r in answer.json()["results"]] == [201, 201, 201, 200]
    assert answer["X-Config-Generation"] == "1" and ConfigGeneration.current() == 1
    assert sent == [{}]
    assert Revision.objects.count() == revisions + 1
    assert RealServer.objects.get().state == "drain"
    assert AuditEntry.objects.filter(user="loadbalancer (API key tests)").count() == 4


def test_a_refused_operation_rolls_the_whole_batch_back_in_the_forms_words(
        rest, sent, interfaces, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        answer = rest.post("/batch", guide_batch(server_ip="198.51.100.100"))
    assert answer.status_code == 400
    errors = answer.json()["errors"]
    assert errors["__all__"] == ["Operation 1 was refused, so nothing in the batch was "
                                 "changed."]
    assert errors["operations.1.ip"] == [
        "A real server cannot have the virtual service's own address."]
    assert not VirtualService.objects.exists() and not FloatingIP.objects.exists()
    assert ConfigGeneration.current() == 0 and sent == []
    assert not AuditEntry.objects.filter(user__endswith="(API key tests)").exists()


@pytest.mark.parametrize(("operations", "words"), [
    ([], "a list of one or more calls"),
    ([{"method": "POST", "path": "/services/web/restart"}], "not a path a batch may hold"),
    ([{"method": "POST", "path": "/batch"}], "not a path a batch may hold"),
    ([{"method": "PUT", "path": "/virtual-services"}], "Use one of"),
    ([{"method": "POST", "path": "/virtual-services/$0/real-servers"}], "$0 names no"),
])
def test_a_batch_refuses_what_it_cannot_hold(rest, operations, words):
    answer = rest.post("/batch", {"operations": operations})
    assert answer.status_code == 400
    assert words in json.dumps(answer.json()["errors"], ensure_ascii=False)
    assert ConfigGeneration.current() == 0


def test_a_batch_checks_each_operations_role(config_user):
    maint = users.do_add_user("test", "a-maint-user", PASSWORD, roles.MAINT)
    key = Api(keys.do_create_key(ApiKey(user=maint, name="m"), config_user))
    service = VirtualService.objects.create(label="VNA", vip="198.51.100.100", ports="80")
    server = service.real_servers.create(label="P", ip="192.0.2.110")
    assert key.post("/batch", {"operations": [
        {"method": "POST", "path": f"/real-servers/{server.pk}/halt"}]}).status_code == 200
    refused = key.post("/batch", {"operations": [
        {"method": "POST", "path": f"/real-servers/{server.pk}/online"},
        {"method": "DELETE", "path": f"/virtual-services/{service.pk}"}]})
    assert refused.status_code == 403
    server.refresh_from_db()
    assert server.state == "halt" and VirtualService.objects.exists()


# An appliance whose image predates the REST API (no django-ninja: the rest-api extra) takes
# this release by a software update: it starts, and /api/v1/ says what it needs.

WITHOUT_NINJA = """
import sys

class NoNinja:  # as if this image had no django-ninja (nor pydantic)
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("ninja", "pydantic"):
            raise ModuleNotFoundError(f"No module named {name!r}")

sys.meta_path.insert(0, NoNinja())
import django
django.setup()
from django.conf import settings
from django.test import RequestFactory
from django.urls import resolve, reverse
assert "ninja" not in settings.INSTALLED_APPS
match = resolve("/api/v1/virtual-services")
response = match.func(RequestFactory().get("/api/v1/virtual-services"), **match.kwargs)
print(response.status_code, response.content.decode())
resolve(reverse("api-v2"))  # API v2 and lbcli need no ninja
assert "ninja" not in sys.modules
"""


def test_without_django_ninja_the_rest_api_says_a_new_image_is_needed(settings):
    result = subprocess.run([sys.executable, "-c", WITHOUT_NINJA], capture_output=True,
                            text=True, cwd=settings.BASE_DIR, check=False,
                            env={**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings",
                                 "PYTHONPATH": str(settings.BASE_DIR)})
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.startswith("503 ")
    assert "needs the django-ninja library" in result.stdout


def test_without_django_ninja_the_documentation_page_says_so(client, monkeypatch):
    monkeypatch.setattr(api_views, "rest_api", None)
    client.force_login(get_user_model().objects.create_user("loadbalancer", password="x-Long-1"))
    text = client.get(reverse("support:rest-api")).content.decode()
    assert 'id="rest-api-missing"' in text and "swagger-ui-bundle" not in text
