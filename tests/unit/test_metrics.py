"""Prometheus /metrics: its own bearer token (not the admin session), the families it exposes;
and the pages of Reports › Traffic Rate, Graphs and Local Configuration › Graphing. Against a
real Redis on a unix socket of the test's own."""

import json

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from clusters import runtime as clusters_runtime
from clusters.models import ConfigGeneration, RealServer, VirtualService
from core.graphing import metrics_token
from reports import sampler

pytestmark = pytest.mark.django_db


@pytest.fixture
def redis_store(redis_server, settings):
    settings.REDIS_URL = f"unix://{settings.REDIS_SOCKET}"
    redis_server.flushall()
    return redis_server


@pytest.fixture
def vna(redis_store):
    service = VirtualService.objects.create(label="VNA", vip="198.51.100.100", ports="12000")
    primary = RealServer.objects.create(service=service, label="PrimaryCluster",
                                        ip="192.0.2.110")
    clusters_runtime.record_applied(ConfigGeneration.bump(), "full", 12.5)
    clusters_runtime.record_connections({primary.id: 3})
    redis_store.set(sampler.RATES_KEY, json.dumps({
        "at": 0, "seconds": 5.0,
        "services": {str(service.id): {"conns": 2.0, "packets_in": 10.0, "packets_out": 8.0,
                                       "bytes_in": 1000.0, "bytes_out": 4000.0}},
        "servers": {f"{service.id}/{primary.id}": {
            "conns": 2.0, "packets_in": 10.0, "packets_out": 8.0, "bytes_in": 1000.0,
            "bytes_out": 4000.0}}}))
    return service, primary


@pytest.fixture
def admin(client):
    user = get_user_model().objects.create_user("loadbalancer", password="a-Long-test-pass")
    client.force_login(user)
    return client


def test_metrics_without_the_token_is_refused(client, vna):
    response = client.get("/metrics")
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    wrong = client.get("/metrics", headers={"Authorization": "Bearer not-the-token"})
    assert wrong.status_code == 401


def test_the_admin_session_is_not_the_token(admin, vna):
    assert admin.get("/metrics").status_code == 401


def test_metrics_with_the_token_exposes_the_families(client, vna, settings):
    token = metrics_token()
    assert oct((settings.DATA_DIR / "metrics_token").stat().st_mode & 0o777) == "0o600"
    response = client.get("/metrics", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200
    text = response.content.decode()
    labels = 'address="192.0.2.110",real_server="PrimaryCluster",service="VNA"'
    assert f'lbadmin_real_server_state{{{labels},state="online"}} 1.0' in text
    assert f'lbadmin_real_server_state{{{labels},state="halt"}} 0.0' in text
    assert f"lbadmin_real_server_health_check_up{{{labels}}} 1.0" in text
    assert f"lbadmin_real_server_connections{{{labels}}} 3.0" in text
    assert f"lbadmin_real_server_bytes_out_per_second{{{labels}}} 4000.0" in text
    assert 'lbadmin_virtual_service_new_connections_per_second{service="VNA"} 2.0' in text
    assert 'lbadmin_virtual_service_connections{service="VNA"} 3.0' in text
    assert "lbadmin_apply_last_milliseconds 12.5" in text
    assert "lbadmin_apply_failing 0.0" in text
    assert "# TYPE lbadmin_up gauge" in text


def test_the_token_is_made_once(settings):
    assert metrics_token() == metrics_token()


def test_graphing_shows_what_is_sampled_and_the_token(admin, redis_store):
    response = admin.get(reverse("local:graphing"))
    assert response.status_code == 200
    text = response.content.decode()
    assert "Every <strong id=\"graphing-interval\">5 s</strong>" in text
    assert metrics_token() in text and "21488 bytes per series" in text
    assert "Layer 4 real servers" in text and "0 series now" in text
    # a block's five files: 1,024 series' points, five 64-byte headers, 5,372 times
    assert "plus 43296 bytes of times and headers per 1024 series" in text


def test_graphing_stores_the_interval_and_what_is_sampled(admin, redis_store):
    from core.models import AuditEntry
    from network.models import GraphingSettings

    response = admin.post(reverse("local:graphing"), {"interval": "30"})
    assert response.status_code == 302
    stored = GraphingSettings.load()
    assert (stored.interval, stored.real_servers) == (30, False)
    assert AuditEntry.objects.filter(action__contains="sample every 30 s").exists()
    text = admin.get(reverse("local:graphing")).content.decode()
    assert "Every <strong id=\"graphing-interval\">30 s</strong>" in text
    assert "Layer 4 real servers" not in text
    # the hour at one point per 30 s: 120 points, a float32 each
    assert "<td>Hour</td><td>30 s</td><td>120</td><td>480</td>" in text
    assert f"{4 * (120 + 1440 + 1008 + 744 + 1460)} bytes per series" in text
    assert 'hx-trigger="every 30s"' in admin.get(
        reverse("reports:layer4-traffic"), headers={"HX-Request": "true"}).content.decode()


def test_graphing_refuses_an_interval_it_does_not_offer_and_saves_nothing(admin, redis_store):
    from network.models import GraphingSettings

    response = admin.post(reverse("local:graphing"), {"interval": "7", "real_servers": "on"})
    assert response.status_code == 200
    text = response.content.decode()
    assert 'id="field-interval"' in text and "Select a valid choice" in text
    assert not GraphingSettings.objects.exists()


def test_traffic_rate_shows_each_service_and_server_and_refreshes_itself(admin, vna):
    response = admin.get(reverse("reports:layer4-traffic"))
    text = response.content.decode()
    assert 'hx-trigger="every 5s"' in text
    assert "PrimaryCluster" in text and "4000" in text
    partial = admin.get(reverse("reports:layer4-traffic"), headers={"HX-Request": "true"})
    assert partial.content.decode().startswith('<div id="traffic-rate"')


def test_graph_data_is_json_for_the_browser_to_draw(admin, vna, settings):
    from core import rings

    rings.write({"system/load1": 0.5, "system/load5": 0.4, "system/load15": 0.3})
    response = admin.get(reverse("reports:graphs-data"), {"graph": "load", "range": "day"})
    data = response.json()
    assert data["title"] == "Load average" and len(data["series"]) == 3
    assert len(data["x"]) == len(data["series"][0]["values"]) >= 1440
    assert 0.5 in data["series"][0]["values"]
    assert admin.get(reverse("reports:graphs-data"),
                     {"graph": "nothing", "range": "day"}).status_code == 404
    page = admin.get(reverse("reports:graphs"), {"service": vna[0].id}).content.decode()
    assert f'data-graph="vs-{vna[0].id}"' in page and "<script>" not in page
    # Local Configuration › Graphing says what the files hold and take on disk
    from django.template.defaultfilters import filesizeformat

    from core.graphing import graphs_dir

    on_disk = sum(path.stat().st_size for path in graphs_dir().iterdir())
    count = len(json.loads((graphs_dir() / "index.json").read_text())["columns"])
    assert count >= 3 and on_disk > 1024 * 21488  # a block: 1,024 series of 21,488 bytes
    assert f"{count} series now, {filesizeformat(on_disk)} on disk" in admin.get(
        reverse("local:graphing")).content.decode()


def test_without_the_observability_extra_graphs_and_metrics_say_why(monkeypatch, admin,
                                                                      redis_store):
    """An appliance updated from an image without numpy and prometheus_client runs this
    release: the Graphs page and /metrics say what is missing instead of failing."""
    from core import rings
    from reports import metrics

    monkeypatch.setattr(rings, "numpy", None)
    monkeypatch.setattr(metrics, "generate_latest", None)
    assert rings.write({"system/load1": 1.0}) == 0
    assert rings.fetch("system/load1") == ([], [])
    page = admin.get(reverse("reports:graphs")).content.decode()
    assert "The graphs need the numpy library" in page
    monkeypatch.setattr(metrics, "authorised", lambda request: True)
    answer = admin.get("/metrics")
    assert answer.status_code == 503 and b"prometheus_client" in answer.content


def test_the_rates_outlive_a_long_interval_and_are_taken_over_it(monkeypatch, redis_store):
    """At 60 s between samples the last rates must still be there for Traffic Rate and
    /metrics until the next one (they expired after 60 s)."""
    from network.models import GraphingSettings

    service = VirtualService.objects.create(label="VNA", vip="198.51.100.100", ports="12000")
    primary = RealServer.objects.create(service=service, label="PrimaryCluster",
                                        ip="192.0.2.110")
    graphing = GraphingSettings.objects.create(pk=1, interval=60)
    counters = iter([{"flows": {}, "opened": {primary.id: 0}},
                     {"flows": {}, "opened": {primary.id: 120}}])
    monkeypatch.setattr(sampler.nft, "read_counters", lambda: next(counters))
    # each sample's clock (its first reading), then the real one (Redis' client reads it too)
    readings, real = [1000.0, 1060.0], sampler.time.monotonic
    monkeypatch.setattr(sampler.time, "monotonic",
                        lambda: readings.pop(0) if readings else real())
    monkeypatch.setattr(sampler, "_previous", None)
    assert sampler.sample(graphing=graphing) is None
    rates = sampler.sample(graphing=graphing)
    assert rates["seconds"] == 60.0
    assert rates["servers"][f"{service.id}/{primary.id}"]["conns"] == 2.0
    assert 120 < redis_store.ttl(sampler.RATES_KEY) <= 180
    assert sampler.read_rates()["services"][str(service.id)]["conns"] == 2.0
