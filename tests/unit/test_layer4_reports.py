"""Reports › Layer 4 Status and Layer 4 Current Connections (issue 14): the kernel's dump
decoded into rows, filtered by mark and client and paged; conntrack's listing counted by
state; the pages with a fake worker answer, and in words when the worker does not answer."""

import errno
import ipaddress
import struct

import pytest
from celery.exceptions import TimeoutError as CeleryTimeout
from django.contrib.auth import get_user_model
from django.urls import reverse

from clusters import runtime as clusters_runtime
from clusters import services, status
from clusters.dataplane import conntrack
from clusters.dataplane.desired import FALLBACK_BIT, MASQ_BIT
from clusters.models import RealServer, VirtualService
from core import workers
from core.workers import WorkerUnavailable
from network.tasks import describe_routes
from reports import layer4_reports, layer4_views
from reports.tasks import list_connections

NESTED = conntrack.NLA_F_NESTED
IPS_SEEN_REPLY, IPS_ASSURED = conntrack.IPS_SEEN_REPLY, conntrack.IPS_ASSURED


def entry(client, client_port, vip, vip_port, server, server_port, mark, proto=6,
          state=3, status=IPS_SEEN_REPLY | IPS_ASSURED, timeout=431999):
    """One entry as the kernel's dump gives it (nlmsghdr, nfgenmsg, attributes nested as
    linux/netfilter/nfnetlink_conntrack.h says; the netns test reads real ones)."""
    a = conntrack._attribute

    def tuple_(source, destination, sport, dport):
        ip = a(1, ipaddress.IPv4Address(source).packed) + a(2, ipaddress.IPv4Address(
            destination).packed)
        proto_ = a(1, bytes([proto])) + a(2, struct.pack("!H", sport)) + \
            a(3, struct.pack("!H", dport))
        return a(1 | NESTED, ip) + a(2 | NESTED, proto_)

    body = (a(1 | NESTED, tuple_(client, vip, client_port, vip_port))
            + a(2 | NESTED, tuple_(server, client, server_port, client_port))
            + a(3, struct.pack("!I", status)))
    if proto == 6:
        body += a(4 | NESTED, a(1 | NESTED, a(1, bytes([state])) + a(2, b"\x07")))
    body += a(7, struct.pack("!I", timeout)) + (a(8, struct.pack("!I", mark)) if mark else b"")
    body += a(11, struct.pack("!I", 1))  # CTA_USE, after the mark, as the kernel puts it
    body = struct.pack("=BBH", 2, 0, 0) + body
    return struct.pack("=IHHII", 16 + len(body), 0x100, 2, 1, 0) + body


DONE = struct.pack("=IHHII", 20, conntrack.NLMSG_DONE, 2, 1, 0) + struct.pack("=i", 0)


def established(mark, client="198.51.100.10", port=40312):
    return entry(client, port, "198.51.100.100", 12000, "192.0.2.110", 12000, mark)


def udp(mark):
    return entry("198.51.100.10", 5000, "198.51.100.100", 12950, "192.0.2.120", 12950, mark,
                 proto=17, status=0, timeout=28)


def webui():
    return entry("198.51.100.10", 50000, "198.51.100.1", 9443, "198.51.100.1", 9443, 0)


def parsed(message):
    return conntrack.parse_message(message, 0, len(message))


def test_an_entry_is_read_into_client_vip_server_state_and_timeout():
    row = parsed(established(5))
    assert (row.protocol, row.client, row.client_port, row.vip, row.vip_port) == \
        ("tcp", "198.51.100.10", 40312, "198.51.100.100", 12000)
    assert (row.server, row.server_port, row.state, row.timeout, row.mark) == \
        ("192.0.2.110", 12000, "ESTABLISHED", 431999, 5)
    assert row.flags == "[ASSURED]"
    assert parsed(entry("198.51.100.11", 1, "198.51.100.100", 12000, "192.0.2.110", 12000,
                        5, state=7)).state == "TIME_WAIT"


def test_a_udp_entry_has_no_state_and_its_server_is_the_reply_source():
    row = parsed(udp(FALLBACK_BIT | MASQ_BIT | 3))
    assert (row.protocol, row.state, row.timeout, row.server, row.server_port) == \
        ("udp", "", 28, "192.0.2.120", 12950)
    assert row.mark == FALLBACK_BIT | MASQ_BIT | 3 and row.flags == "[UNREPLIED]"
    assert parsed(webui()).mark == 0


def test_the_entries_of_a_dump_end_at_done_and_a_refusal_is_an_error_with_its_errno():
    chunks = [established(5) + established(6), udp(7) + DONE, established(8)]
    found = [conntrack.message_mark(data, at, size)
             for data, at, size in conntrack.messages(iter(chunks))]
    assert found == [5, 6, 7]  # nothing after NLMSG_DONE
    refused = struct.pack("=IHHII", 36, conntrack.NLMSG_ERROR, 0, 1, 0) + \
        struct.pack("=i", -errno.EPERM) + b"\0" * 16
    with pytest.raises(OSError) as error:
        list(conntrack.messages(iter([refused])))
    assert error.value.errno == errno.EPERM and "refused the conntrack dump" in str(error.value)


def test_the_dump_request_asks_the_kernel_to_filter_by_mark_and_client_address():
    request = conntrack.dump_request((FALLBACK_BIT | 3, 0xFFFFFFFF & ~MASQ_BIT),
                                     "198.51.100.11")
    size, kind, flags = struct.unpack_from("=IHH", request)
    assert (size, kind, flags) == (len(request), 0x101, 0x301)  # CT_GET, request, dump
    assert request[16] == 2  # nfgen_family AF_INET: IPv4 entries, as conntrack -L
    top = conntrack._attributes(request, 20, len(request))
    assert struct.unpack_from("!I", request, top[8][0])[0] == FALLBACK_BIT | 3  # CTA_MARK
    assert struct.unpack_from("!I", request, top[21][0])[0] == 0xFFFFFFFF & ~MASQ_BIT
    ip = conntrack._attributes(request, *conntrack._attributes(request, *top[1])[1])
    assert bytes(request[slice(*ip[1])]) == bytes([198, 51, 100, 11])  # CTA_IP_V4_SRC
    filter_flags = conntrack._attributes(request, *top[25])  # CTA_FILTER: orig flags IP_SRC
    assert struct.unpack_from("=I", request, filter_flags[1][0])[0] == 1
    bare = conntrack._attributes(conntrack.dump_request(), 20, len(conntrack.dump_request()))
    assert bare == {}  # no filter: the whole table


def stream(*messages):
    return [(message, 0, len(message)) for message in messages]


def test_a_page_decodes_only_its_entries_and_counts_every_marked_one(monkeypatch):
    entries = stream(webui(), *(established(5, port=p) for p in range(250)))
    decoded = []
    real = conntrack.parse_message
    monkeypatch.setattr(conntrack, "parse_message", lambda *a: decoded.append(1) or real(*a))
    total, page = conntrack.page_of_messages(entries, offset=200, limit=100, marked_only=True)
    assert total == 250 and len(page) == 50 and len(decoded) == 50
    assert page[0].client_port == 200
    total, page = conntrack.page_of_messages(iter(entries), offset=0, limit=100,
                                             marked_only=True, count_all=False)
    assert total == 100 and len(page) == 100 and page[0].mark == 5


def test_listing_dumps_once_per_mark_with_the_client_and_pages_across_dumps(monkeypatch):
    asked = []
    tables = {(5, 0xFFFFFFFF): [established(5)] * 3, (6, 0xFFFFFFFF): [established(6)] * 4}

    def dump(mark=None, client=""):
        asked.append((mark, client))
        yield from stream(*tables[mark])

    monkeypatch.setattr(conntrack, "_dump", dump)
    total, page = conntrack.list_connections([(5, 0xFFFFFFFF), (6, 0xFFFFFFFF)],
                                             client="198.51.100.10", offset=2, limit=3)
    assert total == 7
    assert [row.mark for row in page] == [5, 6, 6]
    assert asked == [((5, 0xFFFFFFFF), "198.51.100.10"), ((6, 0xFFFFFFFF), "198.51.100.10")]


def test_one_clients_connections_over_every_mark_leave_its_unmarked_ones_out(monkeypatch):
    def dump(mark=None, client=""):
        assert (mark, client) == (None, "198.51.100.10")
        yield from stream(webui(), established(5), udp(FALLBACK_BIT | 2))

    monkeypatch.setattr(conntrack, "_dump", dump)
    total, page = conntrack.list_connections(None, client="198.51.100.10")
    assert total == 2 and [row.mark for row in page] == [5, FALLBACK_BIT | 2]


def test_a_marks_page_without_a_client_takes_the_samplers_count_instead_of_a_whole_dump(
        monkeypatch):
    dumps = []
    tables = {(5, 0xFFFFFFFF): [established(5, port=p) for p in range(300)],
              (FALLBACK_BIT | 2, 0xFFFFFFFF & ~MASQ_BIT): [udp(FALLBACK_BIT | MASQ_BIT | 2)] * 3}

    def dump(mark=None, client=""):
        read = []
        dumps.append(read)
        for message in stream(*tables[mark]):
            read.append(message)
            yield message

    monkeypatch.setattr(conntrack, "_dump", dump)
    sampled = {5: 5000, FALLBACK_BIT | 2: 1, FALLBACK_BIT | MASQ_BIT | 2: 2, 9: 7}
    marks = list(tables)
    total, page = conntrack.list_connections(marks, offset=0, limit=100, sampled=sampled)
    # the sampler's 5000 for mark 5 (100 read, not its 300), and for the fallback its two
    # marks' 1 + 2 (the page was full: no dump)
    assert (total, len(page)) == (5000 + 3, 100)
    assert [len(read) for read in dumps] == [100]
    # a dump that ends within the page is its own count: the sampler's 5000 is stale
    total, page = conntrack.list_connections([(5, 0xFFFFFFFF)], offset=250, limit=100,
                                             sampled=sampled)
    assert (total, len(page)) == (300, 50)
    dumps.clear()
    total, page = conntrack.list_connections(marks, offset=5000, limit=100, sampled=sampled)
    assert (total, page) == (300 + 3, [])  # so is one that ends before the page
    assert [len(read) for read in dumps] == [300, 3]
    # every connection: the page read, the total the sampler's (no dump of the whole table)
    monkeypatch.setitem(tables, None, [webui()] + tables[(5, 0xFFFFFFFF)])
    monkeypatch.setattr(conntrack, "count_marked", pytest.fail)
    dumps.clear()
    total, page = conntrack.list_connections(None, sampled=sampled)
    assert (total, len(page), [len(read) for read in dumps]) == (5000 + 3 + 7, 100, [101])
    total, page = conntrack.list_connections(None, offset=250, sampled=sampled)
    assert (total, len(page)) == (300, 50)  # the dump ended in the page: its own count
    # with a client the kernel filters: the dump is counted whole, the sampler is not asked
    total, page = conntrack.list_connections([(5, 0xFFFFFFFF)], client="198.51.100.10",
                                             sampled=sampled)
    assert total == 300


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


def test_the_tally_counts_established_as_active_and_every_other_state_as_inactive():
    lines = [ESTABLISHED % 5, ESTABLISHED % 5, TIME_WAIT % 5, UDP % 6, WEBUI]
    tally = conntrack.tally_lines(lines)
    assert tally == {5: {"active": 2, "inactive": 1, "closed": 1},
                     6: {"active": 0, "inactive": 1, "closed": 0}}
    # open for maximum connections and least-connection: TIME_WAIT and CLOSE are not
    assert conntrack.open_counts(tally) == {5: 2, 6: 1}


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
            "rows": [parsed(row).as_dict() for row in rows]}


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
        return answer(established(primary.pk), udp(fallback), total=1234)

    monkeypatch.setattr(layer4_views, "ask_worker", worker)
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
        return answer(established(primary.pk), total=301)

    monkeypatch.setattr(layer4_views, "ask_worker", worker)
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
def test_a_total_the_sampler_counted_says_so(admin, monkeypatch):
    service, primary = guide()
    answers = [dict(answer(established(primary.pk), total=100000), counted_at=1_700_000_000.0),
               dict(answer(established(primary.pk)), counted_at=1_700_000_000.0)]
    monkeypatch.setattr(layer4_views, "ask_worker", lambda task, **kwargs: answers.pop(0))
    url = reverse("reports:layer4-connections")
    page = admin.get(url, {"server": primary.pk}).content.decode()
    assert "Connections 1–1 of 100000" in page
    assert "The total is the connection sampler's count at" in page
    page = admin.get(url, {"server": primary.pk}).content.decode()
    assert "Connections 1–1 of 1" in page and "connections-counted" not in page  # all read


@pytest.mark.django_db
def test_a_wrong_client_address_is_refused_in_words_without_asking_the_worker(
        admin, monkeypatch):
    monkeypatch.setattr(layer4_views, "ask_worker", pytest.fail)
    page = admin.get(reverse("reports:layer4-connections"), {"client": "nobody"})
    assert "is not a client IPv4 address" in page.content.decode()


@pytest.mark.django_db
def test_the_connections_page_says_so_when_the_worker_does_not_answer(admin, monkeypatch):
    def worker(task, **kwargs):
        raise WorkerUnavailable("The reader worker did not answer within 10 s (TimeoutError).")

    monkeypatch.setattr(layer4_views, "ask_worker", worker)
    page = admin.get(reverse("reports:layer4-connections")).content.decode()
    assert "The reader worker did not answer within 10 s" in page
    assert "The tracked connections cannot be shown." in page


def test_a_worker_that_does_not_answer_is_named_by_its_queue(monkeypatch):
    class Late:
        def get(self, timeout):
            raise CeleryTimeout("late")

    monkeypatch.setattr(workers, "send_task", lambda task, **kwargs: Late())
    for task, name in ((list_connections, "reader"), (describe_routes, "dataplane")):
        with pytest.raises(WorkerUnavailable) as problem:
            workers.ask_worker(task)
        assert str(problem.value) == \
            f"The {name} worker did not answer within 10 s (TimeoutError)."


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
