"""Traffic counters from the kernel (issue 14): N connections and B bytes through the VIP from
the lab's client show as N and B (plus headers) in the sampler's rates, in the stored rings
and on /metrics. Real namespaces, real nftables, the sampler's own code in the lb namespace."""

import re
import time

import pytest

from core import rings
from lab import GUIDE_PORTS, PRIMARY_ADDRESS, SECONDARY_ADDRESS, VIP
from reports import sampler

from .conftest import inside
from .test_dataplane import real_server, vna_service
from .traffic import HeldConnection, connect_many

pytestmark = pytest.mark.netns
CONNECTIONS = 20
PAYLOAD = 40_000  # bytes one held connection sends (and gets back, echoed)
HEADERS = 100  # at most, per packet (IP + TCP with options)


def sample(lab):
    with inside(lab.ns("lb")):
        return sampler.sample()


def test_connections_and_bytes_through_the_vip_show_in_the_rates_store_and_metrics(
        dataplane, lab, client, settings, monkeypatch):
    monkeypatch.setattr(sampler, "_previous", None)
    service = vna_service()
    primary = real_server(service)
    dataplane.apply(full=True)
    assert sample(lab) is None  # the first sample only sets the baseline
    answers = connect_many(lab, VIP, GUIDE_PORTS, CONNECTIONS)
    assert all(answer.startswith("primary") for answer in answers)
    with HeldConnection(lab, VIP, 12000) as held:
        assert "echo" in held.talk("x" * PAYLOAD)
    rates = sample(lab)
    seconds = rates["seconds"]
    pair = rates["servers"][f"{service.id}/{primary.id}"]
    assert round(pair["conns"] * seconds) == CONNECTIONS + 1
    packets_in = round(pair["packets_in"] * seconds)
    bytes_in = round(pair["bytes_in"] * seconds)
    assert PAYLOAD <= bytes_in <= PAYLOAD + HEADERS * packets_in
    bytes_out = round(pair["bytes_out"] * seconds)
    assert PAYLOAD <= bytes_out <= PAYLOAD + 60 * (CONNECTIONS + 1) + HEADERS * round(
        pair["packets_out"] * seconds)
    assert rates["services"][str(service.id)] == pair  # no fallback traffic

    # the rings: the newest point of the hour is this sample's rate
    _times, values = rings.fetch(f"vs/{service.id}/conns", "hour")
    assert round([v for v in values if v is not None][-1] * seconds) == CONNECTIONS + 1
    _times, values = rings.fetch(f"rs/{service.id}/{primary.id}/bytes_in", "hour")
    assert round([v for v in values if v is not None][-1] * seconds) == bytes_in

    # /metrics, with its token
    from core.graphing import metrics_token

    text = client.get("/metrics", headers={"Authorization": f"Bearer {metrics_token()}"}) \
        .content.decode()
    found = re.search(r'lbadmin_virtual_service_new_connections_per_second\{service="VNA"\} '
                      r"([0-9.e+]+)", text)
    assert found and round(float(found[1]) * seconds) == CONNECTIONS + 1

    # the counters change with traffic alone: no drift in View Configuration
    assert dataplane.compare()["matches"]


def test_the_fallbacks_traffic_counts_for_its_service(dataplane, lab, monkeypatch):
    monkeypatch.setattr(sampler, "_previous", None)
    service = vna_service()
    real_server(service, state="halt")
    dataplane.apply(full=True)
    sample(lab)
    answers = connect_many(lab, VIP, [12000], 5)
    assert all(answer.startswith("secondary") for answer in answers), answers
    rates = sample(lab)
    assert round(rates["servers"][f"{service.id}/fallback"]["conns"] * rates["seconds"]) == 5
    assert round(rates["services"][str(service.id)]["conns"] * rates["seconds"]) == 5
    # Local Configuration › Graphing without the real servers' series: the service's only
    from network.models import GraphingSettings

    GraphingSettings.objects.create(pk=1, real_servers=False)
    connect_many(lab, VIP, [12000], 2)
    later = int(time.time()) + 3600  # written an hour ahead: a slot no other sample wrote
    with inside(lab.ns("lb")):
        rates = sampler.sample(now=later)
    assert round(rates["servers"][f"{service.id}/fallback"]["conns"] * rates["seconds"]) == 2
    assert rings.fetch(f"rs/{service.id}/fallback/conns", now=later)[1][-1] is None
    assert round(rings.fetch(f"vs/{service.id}/conns", now=later)[1][-1] * rates["seconds"]) \
        == 2
    assert SECONDARY_ADDRESS != PRIMARY_ADDRESS
