"""The one seam to the kernel's connection tracking.

Cutting is in-process over netlink (pyroute2's NFCTSocket): starting `conntrack -D` cost
~18 ms of a Halt. One socket per network namespace is kept open: closing a pyroute2 socket cost
~15 ms here.

Counting the whole table (the sampler) goes through the conntrack command (`conntrack -L -o
extended`), whose C code does the netlink parsing: at 100,000 tracked entries pyroute2's dump
took 8.4 s here, the command's listing read line by line 0.6 s. The command inherits the
worker's CAP_NET_ADMIN (an ambient capability).

Current Connections reads a page over a netlink socket of its own, with its filters in the
dump request so that the kernel applies them (see "Current Connections" below), and decodes
only the page: pyroute2 decodes every entry, conntrack 1.4.7 filters addresses itself.
"""

import contextlib
import ipaddress
import os
import socket
import struct
import subprocess
import threading
from dataclasses import asdict, dataclass
from functools import partial

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


# The sampler's conntrack process yields the CPU to the WebUI, the applies and the pages: at
# 100,000 entries it formats for 0.45 s of CPU every 2 s, on a 2-core appliance.
SAMPLER_NICENESS = 10


def _listing(*filters):
    """`conntrack -L -o extended` with `filters`, as a running process (lines on stdout), at
    a lower CPU priority."""
    process = subprocess.Popen(["conntrack", "-L", "-o", "extended", *filters],
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    with contextlib.suppress(OSError):  # gone already: nothing to lower
        os.setpriority(os.PRIO_PROCESS, process.pid, SAMPLER_NICENESS)
    return process


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
    flags: str  # [ASSURED], [UNREPLIED]

    def as_dict(self):
        return asdict(self)


# ---- Current Connections: the table read over netlink, filtered in the kernel ----------------
#
# A dump request carries its filters, which the kernel applies while it walks the table: the
# mark (`mark & mask == value`, as `conntrack --mark`) and, since Linux 5.8 (CTA_FILTER;
# Debian 12 runs 6.1), the original direction's source address. conntrack 1.4.7 sends only
# the mark and compares the address itself, after the kernel has encoded and it has parsed
# every entry of that mark: 0.3 s for one client's 10,000 of 100,000 entries here, against
# 60 ms for this dump. Only the page's entries are decoded; the rest are counted by their
# message headers.

NETLINK_NETFILTER = 12
CONNTRACK_GET = (1 << 8) | 1  # NFNL_SUBSYS_CTNETLINK << 8 | IPCTNL_MSG_CT_GET
NLM_F_REQUEST, NLM_F_DUMP = 0x1, 0x300
NLMSG_ERROR, NLMSG_DONE = 2, 3
NLA_F_NESTED, NLA_TYPE_MASK = 0x8000, 0x3FFF
# enum ctattr_type and its nested enums (linux/netfilter/nfnetlink_conntrack.h)
CTA_TUPLE_ORIG, CTA_TUPLE_REPLY, CTA_STATUS, CTA_PROTOINFO = 1, 2, 3, 4
CTA_TIMEOUT, CTA_MARK, CTA_MARK_MASK, CTA_FILTER = 7, 8, 21, 25
CTA_TUPLE_IP, CTA_TUPLE_PROTO = 1, 2
CTA_IP_V4_SRC, CTA_IP_V4_DST = 1, 2
CTA_PROTO_NUM, CTA_PROTO_SRC_PORT, CTA_PROTO_DST_PORT = 1, 2, 3
CTA_PROTOINFO_TCP, CTA_PROTOINFO_TCP_STATE = 1, 1
CTA_FILTER_ORIG_FLAGS, CTA_FILTER_FLAG_IP_SRC = 1, 1
IPS_SEEN_REPLY, IPS_ASSURED = 1 << 1, 1 << 2
# the words conntrack prints (libnetfilter_conntrack's tables)
PROTOCOLS = {1: "icmp", 6: "tcp", 17: "udp", 33: "dccp", 47: "gre", 132: "sctp",
             136: "udplite"}
TCP_STATES = ("NONE", "SYN_SENT", "SYN_RECV", "ESTABLISHED", "FIN_WAIT", "CLOSE_WAIT",
              "LAST_ACK", "TIME_WAIT", "CLOSE", "LISTEN")
RECEIVE_BUFFER = 1 << 20

_header = struct.Struct("=IHHII")  # struct nlmsghdr
_attribute_header = struct.Struct("=HH")  # struct nlattr
_be32 = struct.Struct("!I")
_be16 = struct.Struct("!H")


def _attribute(kind, payload):
    size = _attribute_header.size + len(payload)
    return _attribute_header.pack(size, kind) + payload + b"\0" * (-size % 4)


def dump_request(mark=None, client=""):
    """The bytes of a dump request for IPv4 entries, filtered in the kernel by `mark` (a
    (value, mask) pair) and by the original source address `client`."""
    attributes = b""
    if mark is not None:
        value, mask = mark
        attributes += _attribute(CTA_MARK, _be32.pack(value))
        attributes += _attribute(CTA_MARK_MASK, _be32.pack(mask))
    if client:
        address = _attribute(CTA_IP_V4_SRC, ipaddress.IPv4Address(client).packed)
        attributes += _attribute(CTA_TUPLE_ORIG | NLA_F_NESTED,
                                 _attribute(CTA_TUPLE_IP | NLA_F_NESTED, address))
        attributes += _attribute(CTA_FILTER | NLA_F_NESTED, _attribute(
            CTA_FILTER_ORIG_FLAGS, struct.pack("=I", CTA_FILTER_FLAG_IP_SRC)))
    body = struct.pack("=BBH", socket.AF_INET, 0, 0) + attributes  # struct nfgenmsg
    return _header.pack(_header.size + len(body), CONNTRACK_GET, NLM_F_REQUEST | NLM_F_DUMP,
                        1, 0) + body


def messages(chunks):
    """(buffer, offset, size) of each entry in the kernel's answers to a dump, until its end.
    OSError with the kernel's errno when it refused the request."""
    unpack = _header.unpack_from
    for data in chunks:
        at = 0
        while at + _header.size <= len(data):
            size, kind = unpack(data, at)[:2]
            if kind == NLMSG_DONE:
                return
            if kind == NLMSG_ERROR:
                error = -struct.unpack_from("=i", data, at + _header.size)[0]
                if error:
                    raise OSError(error, f"the kernel refused the conntrack dump: "
                                         f"{os.strerror(error)}")
            else:
                yield data, at, size
            at += (size + 3) & ~3


def _received(sock):
    """What the kernel sends, one datagram (up to 32 KiB of entries) at a time."""
    while data := sock.recv(RECEIVE_BUFFER):
        yield data


def _dump(mark=None, client=""):
    """The entries of one kernel-filtered dump, as `messages` gives them. The socket is closed
    when the caller stops reading (the kernel then drops the rest of the dump)."""
    with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER)
        sock.bind((0, 0))
        sock.send(dump_request(mark, client))
        yield from messages(_received(sock))


def _attributes(data, start, end):
    """{type: (start, end) of its payload} of the attributes in data[start:end]."""
    found = {}
    unpack = _attribute_header.unpack_from
    while start + 4 <= end:
        size, kind = unpack(data, start)
        if size < 4:
            break
        found[kind & NLA_TYPE_MASK] = (start + 4, start + size)
        start += (size + 3) & ~3
    return found


def _entry_attributes(data, at, size):
    return _attributes(data, at + _header.size + 4, at + size)  # after nlmsghdr, nfgenmsg


def message_mark(data, at, size):
    """The mark of one entry, 0 when it has none."""
    where = _entry_attributes(data, at, size).get(CTA_MARK)
    return _be32.unpack_from(data, where[0])[0] if where else 0


def _tuple(data, where):
    """(protocol number, source, destination, source port, destination port) of a tuple."""
    parts = _attributes(data, *where)
    ip = _attributes(data, *parts[CTA_TUPLE_IP]) if CTA_TUPLE_IP in parts else {}
    proto = _attributes(data, *parts[CTA_TUPLE_PROTO]) if CTA_TUPLE_PROTO in parts else {}

    def address(kind):
        span = ip.get(kind)
        return str(ipaddress.IPv4Address(bytes(data[span[0]:span[1]]))) if span else ""

    def port(kind):
        span = proto.get(kind)
        return _be16.unpack_from(data, span[0])[0] if span else 0

    number = data[proto[CTA_PROTO_NUM][0]] if CTA_PROTO_NUM in proto else 0
    return (number, address(CTA_IP_V4_SRC), address(CTA_IP_V4_DST), port(CTA_PROTO_SRC_PORT),
            port(CTA_PROTO_DST_PORT))


def parse_message(data, at, size):
    """One entry of a dump as a Tracked, in the words `conntrack -L` uses."""
    top = _entry_attributes(data, at, size)
    number, client, vip, client_port, vip_port = _tuple(data, top[CTA_TUPLE_ORIG])
    _n, server, _to, server_port, _p = _tuple(data, top[CTA_TUPLE_REPLY]) \
        if CTA_TUPLE_REPLY in top else (0, "", "", 0, 0)
    state = ""
    if CTA_PROTOINFO in top:
        info = _attributes(data, *top[CTA_PROTOINFO])
        if CTA_PROTOINFO_TCP in info:
            tcp = _attributes(data, *info[CTA_PROTOINFO_TCP])
            if CTA_PROTOINFO_TCP_STATE in tcp:
                code = data[tcp[CTA_PROTOINFO_TCP_STATE][0]]
                state = TCP_STATES[code] if code < len(TCP_STATES) else str(code)
    status = _be32.unpack_from(data, top[CTA_STATUS][0])[0] if CTA_STATUS in top else 0
    flags = " ".join(word for word, shown in (("[UNREPLIED]", not status & IPS_SEEN_REPLY),
                                              ("[ASSURED]", status & IPS_ASSURED)) if shown)
    timeout = _be32.unpack_from(data, top[CTA_TIMEOUT][0])[0] if CTA_TIMEOUT in top else 0
    mark = _be32.unpack_from(data, top[CTA_MARK][0])[0] if CTA_MARK in top else 0
    return Tracked(PROTOCOLS.get(number, str(number)), client, client_port, vip, vip_port,
                   server, server_port, state, timeout, mark, flags)


def page_of_messages(entries, offset, limit, marked_only=False, count_all=True):
    """(total, [Tracked of entries offset .. offset+limit]): only the page is decoded.
    `marked_only`: entries without a mark are not counted (a dump the kernel could not filter
    by mark). With `count_all` false the reading stops once the page is full (the total is
    then only as far as it read)."""
    total, page = 0, []
    for data, at, size in entries:
        if marked_only and not message_mark(data, at, size):
            continue
        if offset <= total < offset + limit:
            page.append(parse_message(data, at, size))
        total += 1
        if not count_all and total >= offset + limit:
            break
    return total, page


def _read_page(mark, client, offset, limit, marked_only=False, count_all=True):
    entries = _dump(mark, client)
    try:
        return page_of_messages(entries, offset, limit, marked_only, count_all)
    finally:
        entries.close()


# The kernel's count of the calling thread's namespace's table (what `conntrack -C` prints).
TABLE_SIZE = "/proc/sys/net/netfilter/nf_conntrack_count"


def count_marked():
    """How many tracked entries carry a mark: the table's size (the kernel's counter, O(1))
    less the unmarked ones (a kernel-filtered dump of mark 0: the WebUI's own and the health
    checks' connections, few) — without reading 100,000 entries."""
    with open(TABLE_SIZE) as counter:
        every = int(counter.read().strip() or 0)
    return max(0, every - sum(1 for _entry in _dump((0, ALL_BITS))))


def list_connections(marks=None, client="", offset=0, limit=100, sampled=None):
    """One page of the tracked connections lbadmin marked, and how many there are.

    `marks`: None for every lbadmin mark, else an iterable of (value, mask) pairs: an entry
    is kept when mark & mask == value — each pair is one dump the kernel filters, so a
    service's or a server's connections are found without reading the others. `client`:
    only connections from this client address (filtered in the kernel too). Entries are in
    the kernel's table order.

    `sampled`: {mark: entries} as the connection sampler last counted them, or None. Given,
    a dump without a client is read only as far as the page (see _count_or_page)."""
    if marks is None and not client:
        # Unfiltered: only the entries up to the page are read (the first page of 100,000
        # costs milliseconds, not a whole dump); a dump that ended within it counted itself,
        # else the total is the sampler's, or the kernel's counter less the unmarked ones.
        read, page = _read_page(None, "", offset, limit, marked_only=True, count_all=False)
        if read < offset + limit:
            return read, page
        return max(sum(sampled.values()) if sampled is not None else count_marked(), read), page
    if marks is None:  # one client's, over every mark: its unmarked entries are left out
        return _read_page(None, client, offset, limit, marked_only=True)
    total, page = 0, []
    for mark in marks:
        read = _read_page if client or sampled is None else partial(_count_or_page, sampled)
        count, rows = read(mark, client, max(0, offset - total), max(0, limit - len(page)))
        total += count
        page += rows
    return total, page


def _count_or_page(sampled, mark, _client, offset, limit):
    """One mark's page without counting its whole dump: one real server's 100,000 entries
    cost the kernel 0.25 s to encode (and more on a busy machine), the page's first 100 a few
    milliseconds. Its count is the sampler's (at most one sampling interval old) unless the
    dump ended within the page — then it is exact: after a Halt, 0 at once. A page past this
    mark's entries reads nothing."""
    value, mask = mark
    counted = sum(count for each, count in sampled.items() if each & mask == value)
    if not limit:
        return counted, []
    read, page = _read_page(mark, "", offset, limit, count_all=False)
    return (read if read < offset + limit else max(counted, read)), page


def close_sockets():
    """Close every kept socket (tests, whose namespaces come and go; a socket would keep its
    namespace alive)."""
    with _lock:
        for sock in _sockets.values():
            sock.close()
        _sockets.clear()
