"""Reports › Layer 4 Status and Layer 4 Current Connections (issue 14): conntrack's listing
parsed into rows, counted by state, filtered by mark and paged; the pages with a fake worker
answer, and in words when the worker does not answer."""

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from clusters import runtime as clusters_runtime
from clusters import services, status
from clusters.dataplane import conntrack
from clusters.dataplane.desired import FALLBACK_BIT, MASQ_BIT
from clusters.models import RealServer, VirtualService
from core.workers import WorkerUnavailable
from reports import layer4_reports, layer4_views

ESTABLISHED = (b"ipv4     2 tcp      6 431999 ESTABLISHED src=198.51.100.10 dst=198.51.100.100 "
               b"sport=40312 dport=12000 src=192.0.2.110 dst=198.51.100.10 sport=12000 "
               b"dport=40312 [ASSURED] mark=%d use=1\n")
TIME_WAIT = (b"ipv4     2 tcp      6 117 TIME_WAIT src=198.51.100.11 dst=198.51.100.100 "
             b"sport=40400 dport=12100 src=192.0.2.110 dst=198.51.100.11 sport=12100 "
             b"dport=40400 [ASSURED] mark=%d use=1\n")
UDP = (b"ipv4     2 udp      17 28 src=198.51.100.10 dst=198.51.100.100 sport=5000 "
       b"dport=12950 [UNREPLIED] src=192.0.2.120 dst=198.51.100.1 sport=12950 dport=5000 "
       b"mark=%d use=1\n")
WEBUI = (b"ipv4     2 tcp      6 299 ESTABLISHED src=198.51.100.10 dst=198.51.100.1 "
         b"sport=50000 dport=9443 src=198.51.100.1 dst=198.51.100.10 sport=9443 dport=50000 "
         b"[ASSURED] mark=0 use=1\n")


def test_a_listed_line_is_parsed_into_client_vip_server_state_and_timeout():
    row = conntrack.parse_line(ESTABLISHED % 5)
    assert (row.protocol, row.client, row.client_port, row.vip, row.vip_port) == \
        ("tcp", "198.51.100.10", 40312, "198.51.100.100", 12000)
    assert (row.server, row.server_port, row.state, row.timeout, row.mark) == \
        ("192.0.2.110", 12000, "ESTABLISHED", 431999, 5)
    assert row.flags == "[ASSURED]"


def test_a_udp_line_has_no_state_and_its_server_is_the_reply_source():
    row = conntrack.parse_line(UDP % (FALLBACK_BIT | MASQ_BIT | 3))
    assert (row.protocol, row.state, row.timeout, row.server) == ("udp", "", 28, "192.0.2.120")
    assert row.mark == FALLBACK_BIT | MASQ_BIT | 3


def test_a_line_without_the_ipv4_prefix_parses_too():
    row = conntrack.parse_line((ESTABLISHED % 5).split(None, 2)[2])  # "tcp 6 …"
    assert row.client == "198.51.100.10" and row.mark == 5


def test_the_tally_counts_established_as_active_and_every_other_state_as_inactive():
    lines = [ESTABLISHED % 5, ESTABLISHED % 5, TIME_WAIT % 5, UDP % 6, WEBUI]
    tally = conntrack.tally_lines(lines)
    assert tally == {5: {"active": 2, "inactive": 1, "closed": 1},
                     6: {"active": 0, "inactive": 1, "closed": 0}}
    # open for maximum connections and least-connection: TIME_WAIT and CLOSE are not
    assert conntrack.open_counts(tally) == {5: 2, 6: 1}


def test_a_page_parses_only_its_lines_and_counts_every_marked_one():
    lines = [WEBUI] + [ESTABLISHED % 5] * 250
    total, page = conntrack.page_of_lines(lines, offset=200, limit=100)
    assert total == 250 and len(page) == 50
    total, page = conntrack.page_of_lines(lines, offset=0, limit=100, count_all=False)
    assert total == 100 and len(page) == 100


def test_listing_asks_conntrack_per_mark_with_the_client_and_pages_across_listings(
        monkeypatch):
    asked = []
    tables = {"5/0xffffffff": [ESTABLISHED % 5] * 3, "6/0xffffffff": [ESTABLISHED % 6] * 4}

    class Listing:
        def __init__(self, filters):
            asked.append(filters)
            self.stdout = FakeStream(tables[filters[filters.index("--mark") + 1]])

        def kill(self):
            pass

        def wait(self):
            return 0

    monkeypatch.setattr(conntrack, "_listing", lambda *filters: Listing(list(filters)))
    total, page = conntrack.list_connections([(5, 0xFFFFFFFF), (6, 0xFFFFFFFF)],
                                             client="198.51.100.10", offset=2, limit=3)
    assert total == 7
    assert [row.mark for row in page] == [5, 6, 6]
    assert asked[0] == ["-s", "198.51.100.10", "--mark", "5/0xffffffff"]


class FakeStream(list):
    def close(self):
        pass


@pytest.fixture
def admin(client, redis_server, settings):
    settings.REDIS_URL = f"unix://{settings.REDIS_SOCKET}"
    redis_server.flushall()
    status.forget_remembered()
    user = get_user_model().objects.create_user("loadbalancer", password="a-Long-test-pass")
    client.force_login(user)
    yield client
    status.forget_remembered()


def guide():
    service = VirtualService(label="VNA", vip="198.51.100.100", ports="12000,12100",
                             fallback_ip="192.0.2.120", fallback_masq=True)
    service.save()
    primary = RealServer.objects.create(service=service, label="PrimaryCluster",
                                        ip="192.0.2.110")
    return service, primary


def answer(*rows, total=None):
    return {"total": len(rows) if total is None else total, "at": 0.0,
            "rows": [conntrack.parse_line(row).as_dict() for row in rows]}


@pytest.mark.django_db
def test_filters_become_marks_a_service_its_servers_and_its_fallback():
    service, primary = guide()
    other = VirtualService.objects.create(label="Other", vip="198.51.100.101", ports="80")
    assert layer4_reports.marks_for() is None
    assert layer4_reports.marks_for(service) == [
        (primary.pk, 0xFFFFFFFF), (FALLBACK_BIT | service.pk, 0xFFFFFFFF & ~MASQ_BIT)]
    assert layer4_reports.marks_for(server=primary) == [(primary.pk, 0xFFFFFFFF)]
    assert layer4_reports.marks_for(other, primary) == []  # not one of its servers


@pytest.mark.django_db
def test_the_connections_page_names_the_real_server_and_the_fallback_by_their_marks(
        admin, monkeypatch):
    service, primary = guide()
    fallback = FALLBACK_BIT | MASQ_BIT | service.pk
    asked = {}

    def worker(task, **kwargs):
        asked.update(kwargs)
        return answer(ESTABLISHED % primary.pk, UDP % fallback, total=1234)

    monkeypatch.setattr(layer4_views, "ask_dataplane", worker)
    page = admin.get(reverse("reports:layer4-connections")).content.decode()
    assert "198.51.100.10:40312" in page and "198.51.100.100:12000" in page
    assert "PrimaryCluster · 192.0.2.110:12000" in page
    assert "Fallback server · 192.0.2.120:12950" in page
    assert "Connections 1–2 of 1234" in page and "page 1 of 13" in page
    assert asked == {"marks": None, "client": "", "offset": 0, "limit": 100}


@pytest.mark.django_db
def test_the_filters_and_the_page_reach_the_worker(admin, monkeypatch):
    service, primary = guide()
    asked = {}

    def worker(task, **kwargs):
        asked.update(kwargs)
        return answer(ESTABLISHED % primary.pk, total=301)

    monkeypatch.setattr(layer4_views, "ask_dataplane", worker)
    response = admin.get(reverse("reports:layer4-connections"), {
        "service": service.pk, "server": primary.pk, "client": "198.51.100.10", "page": "3"},
        HTTP_HX_REQUEST="true")
    page = response.content.decode()
    assert asked == {"marks": [(primary.pk, 0xFFFFFFFF)], "client": "198.51.100.10",
                     "offset": 200, "limit": 100}
    assert "<html" not in page  # the partial for htmx
    assert "Connections 201–201 of 301" in page and "page 3 of 4" in page
    assert "rel=\"prev\"" in page and "page=2" in page and "rel=\"next\"" in page


@pytest.mark.django_db
def test_a_wrong_client_address_is_refused_in_words_without_asking_the_worker(
        admin, monkeypatch):
    monkeypatch.setattr(layer4_views, "ask_dataplane", pytest.fail)
    page = admin.get(reverse("reports:layer4-connections"), {"client": "nobody"})
    assert "is not a client IPv4 address" in page.content.decode()


@pytest.mark.django_db
def test_the_connections_page_says_so_when_the_worker_does_not_answer(admin, monkeypatch):
    def worker(task, **kwargs):
        raise WorkerUnavailable("The dataplane worker did not answer within 10 s (TimeoutError).")

    monkeypatch.setattr(layer4_views, "ask_dataplane", worker)
    page = admin.get(reverse("reports:layer4-connections")).content.decode()
    assert "The dataplane worker did not answer within 10 s" in page
    assert "The tracked connections cannot be shown." in page


@pytest.mark.django_db
def test_layer4_status_shows_state_weight_active_inactive_and_since_when(admin):
    service, primary = guide()
    services.do_set_state(primary, "drain", "tester")
    clusters_runtime.record_connection_states({
        primary.pk: {"active": 3, "inactive": 2, "closed": 1},
        FALLBACK_BIT | MASQ_BIT | service.pk: {"active": 4, "inactive": 0, "closed": 0}})
    page = admin.get(reverse("reports:layer4-status")).content.decode()
    row = page[page.index('data-real-server="PrimaryCluster"'):]
    row = row[:row.index("</tr>")]
    assert "Online (drain)" in row and "Drain since" in row
    assert '<td class="active">3</td>' in row and '<td class="inactive">2</td>' in row
    fallback = page[page.index('data-fallback="VNA"'):]
    assert '<td class="active">4</td>' in fallback[:fallback.index("</tr>")]
    vs = page[page.index('class="vs '):]
    assert '<td class="active">7</td>' in vs[:vs.index("</tr>")]
    assert 'hx-trigger="every 5s"' in page


@pytest.mark.django_db
def test_layer4_status_says_when_the_fallback_server_is_in_use(admin):
    service, primary = guide()
    services.do_set_state(primary, "halt", "tester")
    page = admin.get(reverse("reports:layer4-status"), HTTP_HX_REQUEST="true").content.decode()
    assert "<html" not in page
    fallback = page[page.index('data-fallback="VNA"'):]
    assert "In use" in fallback[:fallback.index("</tr>")]


@pytest.mark.django_db
def test_the_state_is_dated_by_the_newest_audit_line_that_set_it():
    service, primary = guide()
    services.do_set_state(primary, "halt", "tester")
    services.do_set_state(primary, "online", "tester")
    from core.models import AuditEntry
    newest = AuditEntry.objects.filter(action__endswith="to Online").get().at
    primary.refresh_from_db()
    assert layer4_reports.state_since([primary]) == {primary.pk: newest}
