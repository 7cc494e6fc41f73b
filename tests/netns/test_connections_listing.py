"""Layer 4 Current Connections' reading of the kernel's conntrack table (clusters.dataplane.
conntrack.list_connections: a netlink dump filtered by the kernel, only the page decoded),
checked against what `conntrack -L` itself lists, in the lab's lb namespace. The entries are
made with `conntrack -I` (the NAT tuples a connection through the VIP gets, with marks), as
bench/observability.py makes its 100,000."""

import json
import os
import re
import subprocess
import tempfile

import pytest

from clusters.dataplane import conntrack
from clusters.dataplane.desired import FALLBACK_BIT, MASQ_BIT
from tests.conftest import running_stack
from tests.stacks import WebUISession, in_stack, wait_for

from .conftest import inside
from .test_layer4_reports import CONNECTIONS

pytestmark = pytest.mark.netns
VIP, PRIMARY, SECONDARY = "198.51.100.100", "192.0.2.110", "192.0.2.120"
ALL = 0xFFFFFFFF
CLIENTS = [f"198.51.100.{10 + i}" for i in range(3)]
# mark -> (real server address, entries per client)
MARKS = {7: (PRIMARY, 40), 8: (SECONDARY, 25), FALLBACK_BIT | MASQ_BIT | 3: (SECONDARY, 5)}
UNMARKED = 6  # per client: the WebUI's and the checks' own connections carry no mark


def entry_line(client, port, server, mark, state="ESTABLISHED"):
    line = (f"-I -p tcp -s {client} -d {VIP} --sport {port} --dport 12000 -r {server} "
            f"-q {client} --reply-port-src 12000 --reply-port-dst {port} --state {state} "
            f"-u SEEN_REPLY,ASSURED -t 3600")
    return line + (f" -m {mark}\n" if mark else "\n")


@pytest.fixture
def table(lab):
    """The entries above in lb's table; (run in lb, conntrack's own listing in lb)."""
    lines, port = [], 20000
    for client in CLIENTS:
        for mark, (server, count) in MARKS.items():
            for _ in range(count):
                port += 1
                lines.append(entry_line(client, port, server, mark,
                                        "TIME_WAIT" if port % 9 == 0 else "ESTABLISHED"))
        for _ in range(UNMARKED):
            port += 1
            lines.append(entry_line(client, port, "198.51.100.1", 0))
    with tempfile.NamedTemporaryFile("w", suffix=".conntrack") as batch:
        batch.writelines(lines)
        batch.flush()
        subprocess.run([*lab.exec_prefix("lb"), "conntrack", "-R", batch.name], check=True,
                       capture_output=True)

    def listed(*filters):
        """conntrack -L's own lines for these filters."""
        return subprocess.run([*lab.exec_prefix("lb"), "conntrack", "-L", "-o", "extended",
                               *filters], capture_output=True, text=True,
                              check=True).stdout.splitlines()

    def ours(marks=None, client="", offset=0, limit=100):
        with inside(lab.ns("lb")):
            return conntrack.list_connections(marks, client, offset, limit)

    yield ours, listed
    conntrack.close_sockets()


def as_listed(row):
    """A Tracked in conntrack -L's words (the fields the page shows)."""
    return (f"{row.protocol} {row.timeout} {row.state} src={row.client} dst={row.vip} "
            f"sport={row.client_port} dport={row.vip_port} src={row.server} "
            f"sport={row.server_port} mark={row.mark}")


LINE = re.compile(r"ipv4\s+2 (\w+)\s+\d+ (\d+) (\w+) src=(\S+) dst=(\S+) sport=(\d+) "
                  r"dport=(\d+) src=(\S+) dst=\S+ sport=(\d+) .*mark=(\d+)")


def from_listed(line):
    proto, timeout, state, client, vip, sport, dport, server, server_port, mark = \
        LINE.match(line).groups()
    return (f"{proto} {timeout} {state} src={client} dst={vip} sport={sport} dport={dport} "
            f"src={server} sport={server_port} mark={mark}")


def without_timeouts(rows):
    """The timeouts tick between two readings: compare the rest."""
    return [re.sub(r"^(\w+) \d+ ", r"\1 ", row) for row in rows]


def test_a_server_and_a_client_are_filtered_by_the_kernel_as_conntrack_lists_them(table):
    ours, listed = table
    total, page = ours([(7, ALL)], CLIENTS[1])
    expected = listed("--mark", f"7/{ALL:#x}", "-s", CLIENTS[1])
    assert total == len(expected) == 40
    assert sorted(without_timeouts(map(as_listed, page))) == \
        sorted(without_timeouts(map(from_listed, expected)))
    assert {row.state for row in page} == {"ESTABLISHED", "TIME_WAIT"}
    assert ours([(7, ALL)], "198.51.100.99") == (0, [])  # nobody from there


def test_a_fallbacks_marks_are_one_masked_dump_and_a_service_pages_across_its_marks(table):
    ours, listed = table
    fallback = (FALLBACK_BIT | 3, ALL & ~MASQ_BIT)
    total, page = ours([fallback])
    assert total == len(listed("--mark", f"{FALLBACK_BIT | 3}/{ALL & ~MASQ_BIT:#x}")) == 15
    assert {row.mark for row in page} == {FALLBACK_BIT | MASQ_BIT | 3}
    # a service: its servers' marks and its fallback, one page across the three dumps
    marks = [(7, ALL), (8, ALL), fallback]
    total, page = ours(marks, offset=100, limit=100)
    assert total == 3 * (40 + 25 + 5)
    # 120 of mark 7, then 75 of mark 8, then 15 of the fallback: entries 100 to 199
    assert [row.mark for row in page] == [7] * 20 + [8] * 75 + [FALLBACK_BIT | MASQ_BIT | 3] * 5
    seen = set()
    for offset in range(0, total, 100):
        seen |= {(row.client, row.client_port) for row in ours(marks, offset=offset)[1]}
    assert len(seen) == total  # every entry once


def test_every_marked_connection_is_counted_and_the_unmarked_ones_are_left_out(table):
    ours, listed = table
    marked = len(listed()) - len(listed("--mark", f"0/{ALL:#x}"))
    assert marked == 3 * (40 + 25 + 5)
    total, page = ours()
    assert total == marked and len(page) == 100 and all(row.mark for row in page)
    total, page = ours(offset=200)
    assert len(page) == marked - 200
    total, page = ours(client=CLIENTS[2])
    assert total == 40 + 25 + 5 and {row.client for row in page} == {CLIENTS[2]}


def test_a_cut_servers_connections_are_gone_from_the_next_page(table, lab):
    ours, _listed = table
    assert ours([(8, ALL)])[0] == 75
    with inside(lab.ns("lb")):
        conntrack.delete_by_mark(8)  # what Halt does
    assert ours([(8, ALL)]) == (0, [])
    assert ours([(7, ALL)])[0] == 120


def test_the_samplers_reading_counts_every_mark_at_a_lower_cpu_priority(table, lab):
    ours, listed = table
    with inside(lab.ns("lb")):
        process = conntrack._listing()
    try:
        # lower than the worker's own (0): the pages and the applies go first
        assert os.getpriority(os.PRIO_PROCESS, process.pid) == conntrack.SAMPLER_NICENESS
        tally = conntrack.tally_lines(process.stdout)
    finally:
        process.stdout.close()
        process.wait()
    waiting = sum(1 for line in listed("--mark", f"7/{ALL:#x}") if " TIME_WAIT " in line)
    assert 0 < waiting < 120
    assert tally[7] == {"active": 120 - waiting, "inactive": waiting, "closed": waiting}
    assert set(tally) == set(MARKS)


def test_current_connections_are_read_by_the_reader_worker_while_the_dataplane_one_is_away():
    """The listing and the samplers run on the reader worker (core.queues), in the appliance's
    namespace: with the dataplane worker stopped (as if busy with a long apply) the page still
    lists the kernel's entries, and System Overview's sampler still counts them."""
    client, mark = "198.51.100.77", 4242
    with running_stack() as stack:
        stack.stop_process("worker-dataplane")
        batch = "".join(entry_line(client, 30000 + i, PRIMARY, mark) for i in range(3))
        subprocess.run([*stack.lab.exec_prefix("lb"), "conntrack", "-R", "/dev/stdin"],
                       input=batch, text=True, check=True, capture_output=True)
        reader = stack.processes["worker-reader"].pid
        assert os.stat(f"/proc/{reader}/ns/net").st_ino == \
            os.stat(f"/run/netns/{stack.lab.ns('lb')}").st_ino
        web = WebUISession(stack.https_port)
        web.log_in(stack.generated_password)
        try:
            page = web.get(CONNECTIONS, client=client)
            assert "Connections 1–3 of 3" in page, page[-3000:]
            assert f"deleted real server (mark {mark})" in page  # no server has that mark
            def counted():
                return json.loads(in_stack(stack, CONNECTION_COUNTS)).get(str(mark))

            assert wait_for(lambda: counted() == 3, 10), counted()
        finally:
            web.close()


CONNECTION_COUNTS = """
import json
from clusters.runtime import read_connections
print(json.dumps({str(mark): count for mark, count in read_connections().items()}))
"""
