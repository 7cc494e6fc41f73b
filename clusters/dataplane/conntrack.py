"""The one seam to the kernel's connection tracking.

Cutting is in-process over netlink (pyroute2's NFCTSocket): starting `conntrack -D` cost
~18 ms of a Halt. One socket per network namespace is kept open: closing a pyroute2 socket cost
~15 ms here.

Reading many entries goes through the conntrack command (`conntrack -L -o extended`), whose C
code does the netlink parsing: at 100,000 tracked entries pyroute2's dump took 8.4 s here, the
command's listing read line by line 0.6 s, and one filtered by mark in the kernel (`--mark`)
well under 0.1 s. The command inherits the worker's CAP_NET_ADMIN (an ambient capability).
"""

import os
import re
import subprocess
import threading
from dataclasses import asdict, dataclass

from pyroute2.netlink.nfnetlink.nfctsocket import NFCTSocket

ALL_BITS = 0xFFFFFFFF

_sockets = {}
_lock = threading.Lock()


def _socket():
    """The socket for the calling thread's network namespace (a netlink socket belongs to the
    namespace it was opened in)."""
    namespace = os.stat("/proc/thread-self/ns/net").st_ino
    if namespace not in _sockets:
        _sockets[namespace] = NFCTSocket()
    return _sockets[namespace]


def delete_by_mark(mark):
    """Cut every tracked connection of one (service, server) pair: one flush filtered by mark
    in the kernel (well under a millisecond; counting them first through a dump cost ~10)."""
    with _lock:
        _socket().flush(mark=mark, mark_mask=ALL_BITS)


def count_by_mark():
    """{mark: open connections} over every connection lbadmin marked."""
    return open_counts(count_by_mark_and_state())


CLOSED_STATE_WORDS = {b"TIME_WAIT", b"CLOSE"}
ACTIVE_STATE_WORD = b"ESTABLISHED"


def _listing(*filters):
    """`conntrack -L -o extended` with `filters`, as a running process (lines on stdout)."""
    return subprocess.Popen(["conntrack", "-L", "-o", "extended", *filters],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)


def _mark_of(line):
    """The mark of one listed line (bytes), 0 when it has none."""
    at = line.rfind(b" mark=")
    if at < 0:
        return 0
    end = line.find(b" ", at + 6)
    return int(line[at + 6:end if end >= 0 else None])


def _state_word(line):
    """The TCP state of a listed line (b"ESTABLISHED", b"TIME_WAIT"…), b"" for other protocols:
    the word after the protocol's number and the remaining timeout."""
    fields = line.split(None, 6)
    word = fields[5] if len(fields) > 5 else b""
    return b"" if word.startswith(b"src=") else word


def tally_lines(lines):
    """{mark: {"active", "inactive", "closed"}} of the lines lbadmin marked: active =
    ESTABLISHED, as IPVS counts ActiveConn; inactive = every other state (InActConn); closed,
    the part of inactive in TIME_WAIT or CLOSE (gone for good: not counted as open)."""
    tally = {}
    for line in lines:
        mark = _mark_of(line)
        if not mark:
            continue
        counts = tally.get(mark)
        if counts is None:
            counts = tally[mark] = {"active": 0, "inactive": 0, "closed": 0}
        word = _state_word(line)
        if word == ACTIVE_STATE_WORD:
            counts["active"] += 1
        else:
            counts["inactive"] += 1
            if word in CLOSED_STATE_WORDS:
                counts["closed"] += 1
    return tally


def count_by_mark_and_state():
    """tally_lines over the whole table (0.6 s at 100,000 entries here)."""
    process = _listing()
    try:
        return tally_lines(process.stdout)
    finally:
        process.stdout.close()
        process.wait()


def open_counts(tally):
    """{mark: open connections} (any state but TIME_WAIT and CLOSE) from tally_lines."""
    return {mark: c["active"] + c["inactive"] - c["closed"] for mark, c in tally.items()
            if c["active"] + c["inactive"] - c["closed"]}


LINE = re.compile(
    rb"^(?:ipv4\s+\d+\s+)?(?P<proto>\w+)\s+\d+\s+(?P<timeout>\d+)\s+(?:(?P<state>[A-Z_]+)\s+)?"
    rb"src=(?P<client>\S+) dst=(?P<vip>\S+) (?:sport=(?P<client_port>\d+) "
    rb"dport=(?P<vip_port>\d+) )?.*?src=(?P<server>\S+) dst=\S+ "
    rb"(?:sport=(?P<server_port>\d+) )?")


@dataclass(frozen=True)
class Tracked:
    """One tracked connection, as conntrack gives it."""

    protocol: str
    client: str
    client_port: int
    vip: str
    vip_port: int
    server: str  # where the connection went: the reply's source (after DNAT)
    server_port: int
    state: str  # TCP state, "" for UDP
    timeout: int  # seconds left before conntrack forgets it (renewed by traffic)
    mark: int
    flags: str  # [ASSURED], [UNREPLIED]…

    def as_dict(self):
        return asdict(self)


def parse_line(line):
    """A line of `conntrack -L -o extended` as a Tracked, None when it is not one."""
    if isinstance(line, str):
        line = line.encode()
    match = LINE.match(line)
    if match is None:
        return None
    group = match.group
    flags = b" ".join(re.findall(rb"\[[A-Z_]+\]", line)).decode()
    return Tracked(group("proto").decode(), group("client").decode(),
                   int(group("client_port") or 0), group("vip").decode(),
                   int(group("vip_port") or 0), group("server").decode(),
                   int(group("server_port") or 0), (group("state") or b"").decode(),
                   int(group("timeout")), _mark_of(line), flags)


def page_of_lines(lines, offset, limit, count_all=True):
    """(total, [Tracked of lines offset .. offset+limit]) among the lines lbadmin marked:
    only the page is parsed. With `count_all` false the reading stops once the page is full
    (the total is then only as far as it read)."""
    total, page = 0, []
    for line in lines:
        if not _mark_of(line):
            continue
        if offset <= total < offset + limit:
            tracked = parse_line(line)
            if tracked is not None:
                page.append(tracked)
        total += 1
        if not count_all and total >= offset + limit:
            break
    return total, page


def _read_page(filters, offset, limit, count_all=True):
    process = _listing(*filters)
    try:
        return page_of_lines(process.stdout, offset, limit, count_all)
    finally:
        if not count_all:
            process.kill()
        process.stdout.close()
        process.wait()


def count_marked():
    """How many tracked entries carry a mark: the table's size (`conntrack -C`, read from the
    kernel's counter, O(1)) less the unmarked ones (a kernel-filtered listing of mark 0: the
    WebUI's own and the health checks' connections, few) — without reading 100,000 lines."""
    every = int(subprocess.run(["conntrack", "-C"], capture_output=True, text=True,
                               check=True).stdout.strip() or 0)
    process = _listing("--mark", "0/0xffffffff")
    try:
        unmarked = sum(1 for _line in process.stdout)
    finally:
        process.stdout.close()
        process.wait()
    return max(0, every - unmarked)


def list_connections(marks=None, client="", offset=0, limit=100):
    """One page of the tracked connections lbadmin marked, and how many there are.

    `marks`: None for every lbadmin mark, else an iterable of (value, mask) pairs: an entry
    is kept when mark & mask == value — each pair is one kernel-filtered listing
    (`--mark value/mask`), so a service's or a server's connections are found without reading
    the others. `client`: only connections from this client address (`-s`). Lines are in the
    kernel's table order."""
    filters = ["-s", client] if client else []
    if marks is None and not client:
        # Unfiltered: the total from the kernel's counter, and only the lines up to the page
        # read (the first page of 100,000 entries costs milliseconds, not a whole listing).
        total = count_marked()
        _count, page = _read_page([], offset, limit, count_all=False)
        return max(total, offset + len(page)), page
    listings = [[*filters, "--mark", f"{value}/{mask:#x}"] for value, mask in marks] \
        if marks is not None else [filters]
    total, page = 0, []
    for listing in listings:
        count, rows = _read_page(listing, max(0, offset - total), max(0, limit - len(page)))
        total += count
        page += rows
    return total, page


def close_sockets():
    """Close every kept socket (tests, whose namespaces come and go; a socket would keep its
    namespace alive)."""
    with _lock:
        for sock in _sockets.values():
            sock.close()
        _sockets.clear()
