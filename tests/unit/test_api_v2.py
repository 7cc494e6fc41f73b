"""POST /api/v2/ through Django's test client: the commercial authentication (Basic + key of
the same user), the commercial answer's shape, every refusal of the whole request with its
status and words and nothing changed, and every refusal of the WebUI's forms given in the
same words. (Through the real gunicorn, the X_LB_APIKEY spelling: tests/netns/test_api_v2.py.)"""

import base64
import html as html_module
import json

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from api import keys
from api.models import ApiKey
from clusters.forms import FloatingIPForm
from clusters.models import ConfigGeneration, FloatingIP, RealServer, VirtualService
from core.models import AuditEntry, UserRole
from maintenance.models import Revision
from network import services as network_services
from network.forms import HostnameDnsForm, connected_networks
from network.models import NetworkConfiguration

pytestmark = pytest.mark.django_db
PASSWORD = "a-Long-test-pass"
URL = "/api/v2/"
VNA = {"action": "add-vip", "vip": "VNA", "ip": "198.51.100.100",
       "ports": "12000,12100,12200,12300,12301,12950,12800", "forwarding": "masq",
       "check_type": "on", "fallback_ip": "192.0.2.120", "fallback_port": "0",
       "fallback_masq": "on"}
PRIMARY = {"action": "add-rip", "vip": "VNA", "rip": "PrimaryCluster", "ip": "192.0.2.110"}


@pytest.fixture(autouse=True)
def no_broker(sent):
    """Every test here: the applies are recorded (conftest's `sent`), never sent."""


def make_user(name, role=None):
    user = get_user_model().objects.create_user(name, password=PASSWORD)
    if role:
        UserRole.objects.create(user=user, role=role)
    return user


def make_key(user, name="ansible"):
    return keys.do_create_key(ApiKey(user=user, name=name), by=user)


@pytest.fixture
def admin():
    return make_user("loadbalancer")


@pytest.fixture
def key(admin):
    return make_key(admin)


def headers(key, user="loadbalancer", password=PASSWORD, spelling="HTTP_X_LB_APIKEY"):
    found = {}
    if user is not None:
        found["HTTP_AUTHORIZATION"] = "Basic " + base64.b64encode(
            f"{user}:{password}".encode()).decode()
    if key is not None:
        found[spelling] = base64.b64encode(key.encode()).decode()
    return found


def post(client, body, key, **kwargs):
    data = body if isinstance(body, bytes | str) else json.dumps(body)
    return client.post(URL, data=data, content_type="application/json", **headers(key, **kwargs))


def calls_of(response):
    return response.json()["lbapi"][0]["itteration"][0]["lbcli"]


def nothing_changed():
    return not VirtualService.objects.exists() and ConfigGeneration.current() == 0 and \
        not Revision.objects.exists() and \
        not AuditEntry.objects.exclude(action__startswith="created API key").exclude(
            action__startswith="revoked API key").exclude(
            action__startswith="failed login").exists()


def test_a_batch_runs_as_one_change_and_answers_in_the_commercial_shape(
        client, key, sent, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = post(client, {"lbcli": [VNA, PRIMARY]}, key)
    assert response.status_code == 200
    assert response.json() == {"lbapi": [{"itteration": [{"lbcli": [
        {"action": "add-vip", "vip": "VNA", "ip": "198.51.100.100", "status": "success"},
        {"action": "add-rip", "vip": "VNA", "rip": "PrimaryCluster", "ip": "192.0.2.110",
         "status": "success"}]}]}]}
    assert RealServer.objects.get().service.label == "VNA"
    assert ConfigGeneration.current() == 1 and sent == [{}]
    assert Revision.objects.get().user == "loadbalancer (API key ansible)"
    assert set(AuditEntry.objects.exclude(action__startswith="created API key")
               .values_list("user", flat=True)) == {"loadbalancer (API key ansible)"}


def test_the_dashed_header_and_a_key_sent_as_is_are_taken_too(client, key):
    assert post(client, {"lbcli": [{"action": "list", "function": "virtual"}]}, key,
                spelling="HTTP_X_LB_APIKEY").status_code == 200
    response = client.post(URL, data=json.dumps({"lbcli": {"action": "list",
                                                           "function": "floatingip"}}),
                           content_type="application/json",
                           HTTP_AUTHORIZATION=headers(None)["HTTP_AUTHORIZATION"],
                           HTTP_X_LB_APIKEY=key)
    assert response.status_code == 200 and calls_of(response)[0]["data"] == []


@pytest.mark.parametrize(("case", "words"), [
    ("no key", "API v2 needs an API key"),
    ("wrong key", "The API key is not valid"),
    ("revoked key", "The API key is not valid"),
    ("no password", "API v2 needs an API key"),
    ("wrong password", "the user name or password is wrong"),
    ("another user's key", "the user name or password is wrong"),
])
def test_without_a_valid_key_and_its_users_password_nothing_runs(client, admin, key, case,
                                                                  words):
    other = make_key(make_user("other"), name="other's")
    kwargs = {"no key": {"key": None}, "wrong key": {"key": "lba_" + "x" * 43},
              "revoked key": {"key": key}, "no password": {"key": key, "user": None},
              "wrong password": {"key": key, "password": "guess"},
              "another user's key": {"key": other}}[case]
    if case == "revoked key":
        keys.do_revoke_key(ApiKey.objects.get(name="ansible"), by=admin)
    key_text = kwargs.pop("key")
    response = post(client, {"lbcli": [VNA]}, key_text, **kwargs)
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Basic")
    assert calls_of(response)[0]["status"] == "fatal"
    assert words in calls_of(response)[0]["error"]
    assert nothing_changed()
    if case == "wrong password":  # a refused password is a failed login, counted and logged
        assert AuditEntry.objects.filter(action__startswith="failed login").exists()


def test_a_report_key_may_read_but_not_write(client, key):
    reader = make_user("reader", role=UserRole.Role.REPORT)
    reader_key = make_key(reader, name="monitoring")
    read = post(client, {"lbcli": [{"action": "list", "function": "virtual"}]}, reader_key,
                user="reader")
    assert read.status_code == 200 and calls_of(read)[0]["status"] == "success"
    response = post(client, {"lbcli": [{"action": "list", "function": "virtual"}, VNA]},
                    reader_key, user="reader")
    assert response.status_code == 403
    assert calls_of(response)[1]["error"] == (
        "Your role, report: read only, may not do this: it needs the config role. Ask a user "
        "with the config role (Maintenance › Passwords).")
    assert nothing_changed()


@pytest.mark.parametrize(("body", "words"), [
    (b"{not json", "The body is not JSON"),
    (b"[]", "The body must be {\"lbcli\": [{\"action\": …}, …]}"),
    (b'{"lbcli": []}', "at least one call"),
    (b'{"calls": [{"action": "list"}]}', "The body must be"),
    (b"\xff\xfe", "The body is not JSON"),
])
def test_a_malformed_body_is_400_fatal_in_words(client, key, body, words):
    response = post(client, body, key)
    assert response.status_code == 400
    assert calls_of(response)[0]["status"] == "fatal"
    assert words in calls_of(response)[0]["error"]
    assert nothing_changed()


def test_an_unknown_action_is_fatal_and_undoes_the_batch(client, key):
    response = post(client, {"lbcli": [VNA, {"action": "make-coffee"}]}, key)
    assert response.status_code == 200
    first, second = calls_of(response)
    assert second == {"action": "make-coffee", "status": "fatal",
                      "error": second["error"]}
    assert second["error"].startswith("Unknown action “make-coffee”")
    assert first["status"] == "failed" and first["error"].startswith("not saved")
    assert nothing_changed()


def test_a_100_mb_body_is_refused_from_its_length_413(client, key):
    body = b'{"lbcli": [' + b" " * (100 * 1024 * 1024) + b"]}"
    response = post(client, body, key)
    assert response.status_code == 413
    assert "API v2 takes at most 16 MiB in one request" in calls_of(response)[0]["error"]
    assert nothing_changed()


def test_only_post(client, key):
    response = client.get(URL, **headers(key))
    assert response.status_code == 405 and response["Allow"] == "POST"


def test_a_session_alone_reaches_nothing_and_needs_no_csrf_token_with_a_key(client, admin, key):
    client.force_login(admin)
    assert post(client, {"lbcli": [VNA]}, None, user=None).status_code == 401
    enforcing = type(client)(enforce_csrf_checks=True)
    assert post(enforcing, {"lbcli": [VNA]}, key).status_code == 200


# -- every refusal of the WebUI's forms, in the same words ------------------------------------

GOOD_SERVICE = {
    "label": "VNA", "vip": "198.51.100.100", "ports": "12000,12100", "protocol": "tcp",
    "forwarding": "nat", "scheduler": "wrr", "persistence_timeout": "300", "check_type": "on",
    "fallback_ip": "192.0.2.120", "fallback_port": "0", "fallback_masq": "on",
    "check_request": "/", "check_interval": "30", "check_timeout": "5", "failure_count": "10",
    "on_failure": "keep",
}
GOOD_SERVER = {"label": "PrimaryCluster", "ip": "192.0.2.110", "port": "", "weight": "100",
               "min_connections": "0", "max_connections": "0"}


def webui_error(client, url, data, field):
    page = client.post(url, data).content.decode()
    start = page.index(f'id="field-{field}"')
    block = page[start:page.index("</div>", start)]
    assert "field-error" in block, (field, data)
    return html_module.unescape(block.split('class="field-error" role="alert">')[1]
                                .split("</p>")[0]).strip()


# (WebUI field, value, lbcli option, lbcli value): the WebUI's refusals, from
# tests/unit/test_layer4_webui.py's tables and the forms' clean() rules
SERVICE_CASES = [
    ("vip", "198.51.100.300", "ip", None), ("vip", "224.0.0.1", "ip", None),
    ("vip", "127.0.0.1", "ip", None),
    ("ports", "0", "ports", None), ("ports", "65536", "ports", None),
    ("ports", "80,80", "ports", None), ("ports", "800-900,850", "ports", None),
    ("ports", "900-800", "ports", None), ("ports", "http", "ports", None),
    ("ports", "80,,81", "ports", None),
    ("persistence_timeout", "0", "persist_time", None),
    ("persistence_timeout", "86401", "persist_time", None),
    ("fallback_ip", "192.0.2", "fallback_ip", None),
    ("fallback_ip", "198.51.100.100", "fallback_ip", None),
    ("fallback_port", "70000", "fallback_port", None),
    ("check_port", "0", "check_port", None),
    ("check_timeout", "30", "check_timeout", None),
    ("check_interval", "0", "check_interval", None),
    ("failure_count", "101", "check_failures", None),
    ("check_request", "/a b", "check_request", None),
    ("check_host", "a\tb", "check_vhost", None),
    ("alert_address", "not-an-address", "email", None),
    ("check_type", "external", "check_type", "external"),
]
SERVER_CASES = [
    ("ip", "192.0.2.999"), ("ip", "198.51.100.100"), ("ip", "192.0.2.254"),
    ("port", "0"), ("port", "65536"), ("weight", "65536"), ("weight", "-1"),
    ("weight", "heavy"), ("min_connections", "10"),
]
RIP_OPTION = {"ip": "ip", "port": "port", "weight": "weight", "min_connections": "minconns"}


@pytest.fixture
def webui(client, admin, settings, tmp_path):
    """The WebUI's pages as a logged-in browser posts them (a client of its own)."""
    settings.REDIS_URL = f"unix://{tmp_path}/nothing.sock"
    settings.CELERY_BROKER_URL = f"redis+socket://{tmp_path}/nothing.sock"
    browser = type(client)()
    browser.force_login(admin)
    return browser


@pytest.mark.parametrize(("field", "value", "option", "lbcli_value"), SERVICE_CASES)
def test_every_refusal_of_the_service_form_has_an_api_twin_in_the_same_words(
        client, webui, key, field, value, option, lbcli_value):
    # a timeout counts only for a service that is checked
    good = GOOD_SERVICE | ({"check_type": "connect"} if field == "check_timeout" else {})
    words = webui_error(webui, reverse("cluster:virtual-service-add"), good | {field: value},
                        "check_script" if field == "check_type" else field)
    call = {"action": "add-vip", "vip": "VNA", "ip": "198.51.100.100", "ports": "12000,12100",
            "check_type": good["check_type"], "fallback_ip": "192.0.2.120",
            option: value if lbcli_value is None else lbcli_value}
    answer = calls_of(post(client, {"lbcli": [call]}, key))[0]
    assert answer["status"] == "failed"
    assert words in answer["error"], (words, answer["error"])
    assert nothing_changed()


@pytest.mark.parametrize(("field", "value"), SERVER_CASES)
def test_every_refusal_of_the_real_server_form_has_an_api_twin_in_the_same_words(
        client, webui, key, field, value):
    assert post(client, {"lbcli": [VNA]}, key).status_code == 200
    FloatingIP.objects.create(address="192.0.2.254")  # an address a real server may not take
    service = VirtualService.objects.get()
    data = GOOD_SERVER | {field: value}
    call = {"action": "add-rip", "vip": "VNA", "rip": "PrimaryCluster", "ip": "192.0.2.110",
            RIP_OPTION[field]: value}
    if field == "min_connections":
        data["max_connections"] = call["maxconns"] = "5"
    words = webui_error(webui, reverse("cluster:real-server-add", args=[service.pk]), data,
                        field)
    answer = calls_of(post(client, {"lbcli": [call]}, key))[0]
    assert answer["status"] == "failed"
    assert words in answer["error"], (words, answer["error"])
    assert not RealServer.objects.exists()


def test_a_duplicate_label_has_the_same_words_as_exists(client, webui, key):
    post(client, {"lbcli": [VNA, PRIMARY]}, key)
    service = VirtualService.objects.get()
    words = webui_error(webui, reverse("cluster:virtual-service-add"),
                        GOOD_SERVICE | {"vip": "198.51.100.101"}, "label")
    answer = calls_of(post(client, {"lbcli": [VNA | {"ip": "198.51.100.101"}]}, key))[0]
    assert answer["status"] == "exists" and answer["error"] == words
    words = webui_error(webui, reverse("cluster:real-server-add", args=[service.pk]),
                        GOOD_SERVER | {"ip": "192.0.2.111"}, "label")
    answer = calls_of(post(client, {"lbcli": [PRIMARY | {"ip": "192.0.2.111"}]}, key))[0]
    assert answer["status"] == "exists" and answer["error"] == words


def test_ports_taken_by_another_service_have_the_same_words(client, webui, key):
    post(client, {"lbcli": [VNA]}, key)
    words = webui_error(webui, reverse("cluster:virtual-service-add"),
                        GOOD_SERVICE | {"label": "Other", "ports": "800-900,12950"}, "ports")
    answer = calls_of(post(client, {"lbcli": [VNA | {"vip": "Other",
                                                     "ports": "800-900,12950"}]}, key))[0]
    assert answer["status"] == "failed" and words in answer["error"]


# Floating IP's and Hostname & DNS: their pages ask the dataplane worker first, so their
# forms' own words are the reference here (the same forms the pages bind)

@pytest.mark.parametrize("address", ["203.0.113.5", "192.0.2.0", "192.0.2.255",
                                     "192.0.2.110", "198.51.100.100", "not-an-address"])
def test_every_refusal_of_the_floating_ip_form_has_an_api_twin_in_the_same_words(
        client, key, address):
    config = NetworkConfiguration.load()
    config.interfaces = {"eth0": {"addresses": ["192.0.2.1/24"]},
                         "eth1": {"addresses": ["198.51.100.1/24"]}}
    config.save()
    post(client, {"lbcli": [VNA, PRIMARY]}, key)
    form = FloatingIPForm({"address": address}, networks=connected_networks(
        [], config.interfaces))
    assert not form.is_valid()
    answer = calls_of(post(client, {"lbcli": [{"action": "add-floating-ip",
                                               "ip": address}]}, key))[0]
    assert answer["status"] == "failed"
    assert answer["error"] == " ".join(f"ip: {words}" for words in form.errors["address"])
    assert not FloatingIP.objects.exists()


@pytest.mark.parametrize(("call", "data"), [
    ({"action": "hostname", "hostname": "-lb"}, {"hostname": "-lb"}),
    ({"action": "hostname", "hostname": "lb_1"}, {"hostname": "lb_1"}),
    ({"action": "dns", "dns1": "192.0.2.999"}, {"hostname": "lbadmin", "dns1": "192.0.2.999"}),
])
def test_every_refusal_of_the_hostname_form_has_an_api_twin_in_the_same_words(client, key,
                                                                              call, data):
    before = NetworkConfiguration.load()
    form = HostnameDnsForm(data)
    assert not form.is_valid()
    answer = calls_of(post(client, {"lbcli": [call]}, key))[0]
    assert answer["status"] == "failed"
    for field, messages in form.errors.items():
        for words in messages:
            assert f"{field}: {words}" in answer["error"]
    after = NetworkConfiguration.load()
    assert (after.hostname, after.dns) == (before.hostname, before.dns)


# -- interface (the guide's 6.1.1) --------------------------------------------------------------

LIVE = [
    {"name": "eth0", "kind": "veth", "mtu": 1500, "addresses": ["192.0.2.1/24"],
     "marked": [{"cidr": "192.0.2.1/24", "role": ""}]},
    {"name": "eth1", "kind": "veth", "mtu": 1500, "addresses": ["198.51.100.1/24"],
     "marked": [{"cidr": "198.51.100.1/24", "role": ""}]},
]
ETH1 = {"action": "interface", "interface": "eth1", "ip": "198.51.100.2/24"}


class GunicornSocket:
    """The local end of the connection, as gunicorn's socket tells it (network.views)."""

    def getsockname(self):
        return ("198.51.100.1", 9443)


@pytest.fixture
def network_worker(monkeypatch):
    applied = []
    monkeypatch.setattr(network_services, "live_interfaces", lambda: (LIVE, ""))
    monkeypatch.setattr(network_services, "ask_dataplane",
                        lambda task, **kwargs: applied.append(kwargs["config"]) or {"ok": True})
    stored = NetworkConfiguration.load()
    stored.interfaces = {"eth0": {"addresses": ["192.0.2.1/24"], "mtu": None},
                         "eth1": {"addresses": ["198.51.100.1/24"], "mtu": None}}
    stored.save()
    return applied


def test_a_deployment_starts_with_the_interface_then_the_batch(client, key, network_worker):
    response = post(client, {"lbcli": [ETH1 | {"ip": "198.51.100.1/24,198.51.100.3/24"},
                                       VNA, PRIMARY]}, key)
    assert [c["status"] for c in calls_of(response)] == ["success"] * 3
    assert NetworkConfiguration.load().interfaces["eth1"]["addresses"] == [
        "198.51.100.1/24", "198.51.100.3/24"]
    assert RealServer.objects.get().service.label == "VNA"


def test_a_change_removing_the_address_the_call_came_to_is_refused(client, key, network_worker):
    refused = calls_of(client.post(URL, data=json.dumps({"lbcli": [ETH1]}),
                                   content_type="application/json", **headers(key),
                                   **{"gunicorn.socket": GunicornSocket()}))[0]
    assert refused["status"] == "failed"
    assert refused["error"].startswith("This change removes 198.51.100.1, the address this "
                                       "call reached the appliance at.")
    assert network_worker == []
    # the same change through another of its addresses is made
    assert calls_of(post(client, {"lbcli": [ETH1]}, key))[0]["status"] == "success"


def test_a_maint_key_may_not_configure_interfaces(client, network_worker):
    make_key(make_user("operator", UserRole.Role.MAINT))
    response = post(client, {"lbcli": [ETH1]}, make_key(
        get_user_model().objects.get(username="operator"), "second"), user="operator")
    assert response.status_code == 403
    assert calls_of(response)[0]["error"].startswith("Your role, maint")
    assert network_worker == []
