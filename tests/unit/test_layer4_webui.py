"""Layer 4 pages through Django's test client: every bad input gets its error in words next
to its field and nothing is saved; labels are escaped; state buttons record and audit."""

import html as html_module

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from clusters import runtime, status
from clusters.models import ConfigGeneration, RealServer, VirtualService
from core.models import AuditEntry

pytestmark = pytest.mark.django_db

GOOD_SERVICE = {
    "label": "VNA", "vip": "198.51.100.100", "ports": "12000,12100,12200,12300,12301,12950,12800",
    "protocol": "tcp", "forwarding": "nat", "scheduler": "wrr", "persistence_timeout": "300",
    "check_type": "on", "fallback_ip": "192.0.2.120", "fallback_port": "0",
    "fallback_masq": "on", "check_request": "/", "check_interval": "30", "check_timeout": "5",
    "failure_count": "10", "on_failure": "keep",
}
GOOD_SERVER = {"label": "PrimaryCluster", "ip": "192.0.2.110", "port": "", "weight": "100",
               "min_connections": "0", "max_connections": "0"}


@pytest.fixture
def admin(client, redis_down):
    user = get_user_model().objects.create_user("loadbalancer", password="a-Long-test-pass")
    client.force_login(user)
    return client


@pytest.fixture
def redis_down(settings, tmp_path):
    settings.REDIS_URL = f"unix://{tmp_path}/nothing.sock"
    settings.CELERY_BROKER_URL = f"redis+socket://{tmp_path}/nothing.sock"


@pytest.fixture
def nothing_applied_yet(monkeypatch):
    """Redis answers, and the dataplane worker has applied nothing yet."""
    monkeypatch.setattr(runtime, "read_status", lambda client=None: runtime.ApplyStatus())
    monkeypatch.setattr(runtime, "read_connections", lambda client=None: {})
    monkeypatch.setattr(runtime, "read_overloaded", lambda client=None: frozenset())
    monkeypatch.setattr(status.health_state, "load_many", lambda ids, client=None: {})
    monkeypatch.setattr(status.health_state, "down_servers", lambda client=None: frozenset())


def field_error(response, field):
    """The error text shown inside the field's own block."""
    html = response.content.decode()
    start = html.index(f'id="field-{field}"')
    block = html[start:html.index("</div>", start)]
    if "field-error" not in block:
        return ""
    return html_module.unescape(block.split('class="field-error" role="alert">')[1]
                                .split("</p>")[0])


def add_service(client, **changes):
    return client.post(reverse("cluster:virtual-service-add"), GOOD_SERVICE | changes)


def test_the_guides_service_is_saved_and_the_apply_is_asked_for(
        admin, sent, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = add_service(admin)
    assert response.status_code == 302
    assert sent == [{}]  # one apply (of the difference), once the save committed
    service = VirtualService.objects.get()
    assert service.ports == "12000,12100,12200,12300,12301,12950,12800"
    assert service.fallback_masq and service.fallback_port == 0
    assert ConfigGeneration.current() == 1
    assert AuditEntry.objects.get().action.startswith("added virtual service VNA")


@pytest.mark.parametrize(("field", "value", "words"), [
    ("vip", "198.51.100.300", "is not an IPv4 address"),
    ("vip", "224.0.0.1", "not a unicast host address"),
    ("ports", "", "Enter at least one port"),
    ("ports", "0", "outside 1–65535"),
    ("ports", "65536", "outside 1–65535"),
    ("ports", "80,80", "repeats a port"),
    ("ports", "800-900,850", "repeats a port"),
    ("ports", "900-800", "runs backwards"),
    ("ports", "http", "is not a port"),
    ("ports", "80,,81", "empty entry"),
    ("persistence_timeout", "0", "greater than or equal to 1"),
    ("fallback_ip", "192.0.2", "is not an IPv4 address"),
    ("fallback_ip", "198.51.100.100", "cannot be the virtual service's own address"),
    ("fallback_port", "70000", "less than or equal to 65535"),
    ("label", "", "This field is required"),
])
def test_bad_service_input_is_refused_next_to_its_field(admin, field, value, words):
    response = add_service(admin, **{field: value})
    assert response.status_code == 200
    assert words in field_error(response, field)
    assert not VirtualService.objects.exists()
    assert ConfigGeneration.current() == 0


def test_a_vip_port_and_protocol_already_taken_is_refused(admin):
    add_service(admin)
    response = add_service(admin, label="Other", ports="800-900,12950")
    assert "already takes some of these ports" in field_error(response, "ports")
    assert "VNA" in field_error(response, "ports")
    # Another protocol on the same ports is a different service.
    assert add_service(admin, label="Other", protocol="udp").status_code == 302


def test_a_duplicate_label_is_refused(admin):
    add_service(admin)
    response = add_service(admin, vip="198.51.100.101")
    assert "Another virtual service has this label" in field_error(response, "label")
    assert VirtualService.objects.count() == 1


def test_other_forwarding_methods_are_shown_as_not_available_with_the_reason(admin):
    html = admin.get(reverse("cluster:virtual-service-add")).content.decode()
    assert "Direct Routing (DR) — not available here" in html
    assert add_service(admin, forwarding="dr").status_code == 200
    assert not VirtualService.objects.exists()


def test_the_scheduler_says_least_connection_is_emulated(admin):
    page = admin.get(reverse("cluster:virtual-service-add"))
    assert b"is emulated, as nftlb does" in page.content


def test_labels_are_escaped_everywhere(admin):
    label = "<script>alert(1)</script>"
    add_service(admin, label=label)
    service = VirtualService.objects.get()
    admin.post(reverse("cluster:real-server-add", args=[service.pk]),
               GOOD_SERVER | {"label": label})
    for url in (reverse("cluster:virtual-services"), reverse("cluster:real-servers"),
                reverse("overview:index"), reverse("overview:layer4")):
        html = admin.get(url).content.decode()
        assert label not in html, url
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html, url


def add_server(client, service, **changes):
    return client.post(reverse("cluster:real-server-add", args=[service.pk]),
                       GOOD_SERVER | changes)


@pytest.mark.parametrize(("field", "value", "words"), [
    ("ip", "192.0.2.999", "is not an IPv4 address"),
    ("ip", "198.51.100.100", "cannot have the virtual service's own address"),
    ("port", "0", "greater than or equal to 1"),
    ("port", "65536", "less than or equal to 65535"),
    ("weight", "65536", "less than or equal to 65535"),
    ("weight", "-1", "greater than or equal to 0"),
    ("weight", "heavy", "Enter a whole number"),
    ("min_connections", "10", "cannot be above the maximum"),
])
def test_bad_real_server_input_is_refused_next_to_its_field(admin, field, value, words):
    add_service(admin)
    service = VirtualService.objects.get()
    changes = {field: value}
    if field == "min_connections":
        changes["max_connections"] = "5"
    response = add_server(admin, service, **changes)
    assert response.status_code == 200
    assert words in field_error(response, field)
    assert not RealServer.objects.exists()


def test_a_duplicate_real_server_label_in_one_service_is_refused(admin):
    add_service(admin)
    service = VirtualService.objects.get()
    assert add_server(admin, service).status_code == 302
    response = add_server(admin, service, ip="192.0.2.111")
    assert "already has a real server with this label" in field_error(response, "label")
    assert RealServer.objects.count() == 1


def test_the_real_server_defaults_follow_the_guide(admin):
    add_service(admin)
    html = admin.get(reverse("cluster:real-server-add",
                             args=[VirtualService.objects.get().pk])).content.decode()
    assert 'name="weight" value="100"' in html
    assert 'name="min_connections" value="0"' in html
    assert 'name="max_connections" value="0"' in html


def test_halt_and_online_buttons_record_the_state_and_show_it_pending(
        admin, sent, nothing_applied_yet, django_capture_on_commit_callbacks):
    add_service(admin)
    service = VirtualService.objects.get()
    add_server(admin, service)
    server = RealServer.objects.get()
    with django_capture_on_commit_callbacks(execute=True):
        response = admin.post(reverse("overview:set-state", args=[server.pk]),
                              {"state": "halt"}, HTTP_HX_REQUEST="true")
    server.refresh_from_db()
    assert server.state == "halt"
    assert sent == [{}]
    html = response.content.decode()
    # pending: Halt is recorded, the worker has not put it into the kernel yet
    assert 'id="layer4"' in html and "Online (halt): applying…" in html
    assert AuditEntry.objects.filter(action__contains="to Halt").exists()
    with django_capture_on_commit_callbacks(execute=True):
        response = admin.post(reverse("overview:set-state", args=[server.pk]),
                              {"state": "online"}, HTTP_HX_REQUEST="true")
    server.refresh_from_db()
    assert server.state == "online"
    assert "Online: applying…" in response.content.decode()
    assert AuditEntry.objects.filter(action__contains="to Online").exists()
    assert sent == [{}, {}]


def test_an_unknown_state_changes_nothing(admin):
    add_service(admin)
    add_server(admin, VirtualService.objects.get())
    server = RealServer.objects.get()
    admin.post(reverse("overview:set-state", args=[server.pk]), {"state": "explode"})
    server.refresh_from_db()
    assert server.state == "online"


def test_the_overview_says_when_redis_is_down_instead_of_guessing(admin):
    add_service(admin)
    html = admin.get(reverse("overview:index")).content.decode()
    assert "Redis is down:" in html


def test_deleting_a_service_asks_first_then_removes_it_and_its_servers(admin):
    add_service(admin)
    service = VirtualService.objects.get()
    add_server(admin, service)
    assert b"Delete virtual service" in admin.get(
        reverse("cluster:virtual-service-delete", args=[service.pk])).content
    admin.post(reverse("cluster:virtual-service-delete", args=[service.pk]))
    assert not VirtualService.objects.exists() and not RealServer.objects.exists()
