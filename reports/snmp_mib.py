"""lbadmin's SNMP subtree (reports/mibs/LBADMIN-MIB.txt): the virtual services and real
servers of Reports › Layer 4 Status as a sorted table of OIDs, which reports.snmp_agent
answers GET and GETNEXT from.

The figures come from where Layer 4 Status takes them, through the same functions, so SNMP
never says something the screen does not: states, words and health from System Overview's
rows (clusters.status.layer4_status), active and inactive connections from the dataplane
worker's sampler (clusters.runtime.read_connection_states, counted per mark by
reports.layer4_reports). A service's connections include its fallback server's, as on the
screen. When Redis is down the counts are unknown: their columns are left out (a poller
sees no value rather than a wrong 0) and lbStatusProblem says why.

Layout under LBADMIN_OID (indexes are the database ids, which stay the same across restarts,
renames and other rows' deletion):
  .1.1.0 lbVirtualServiceCount  .1.2.0 lbRealServerCount
  .1.3.0 lbConnectionsSampledAt (Unix time, 0 = never)  .1.4.0 lbStatusProblem ("" = none)
  .2.1.<column>.<service>           lbVirtualServiceTable (VS_COLUMNS)
  .3.1.<column>.<service>.<server>  lbRealServerTable (RS_COLUMNS)
"""

import bisect
from dataclasses import dataclass

import redis

from clusters import runtime
from clusters.status import layer4_status
from core.runtime import redis_client
from network.snmpd import LBADMIN_OID

from .layer4_reports import Counts, counts_of, fallback_counts

BASE = tuple(int(part) for part in LBADMIN_OID.strip(".").split("."))
GAUGE_MAX = 2**32 - 1
STRING_MAX = 255
# The rows' colours (clusters.status) as numbers a poller can alarm on.
STATUS_CODES = {"up": 1, "drain": 2, "halt": 3, "full": 4, "down": 5, "pending": 6}
ADMIN_STATES = {"online": 1, "drain": 2, "halt": 3}

# column number -> (name, type, value of a (ServiceRow, counts, fallback counts))
VS_COLUMNS = {
    1: ("lbVsIndex", "integer", lambda row, c, f: row.service.id),
    2: ("lbVsLabel", "string", lambda row, c, f: row.service.label),
    3: ("lbVsVip", "string", lambda row, c, f: row.service.vip),
    4: ("lbVsPorts", "string", lambda row, c, f: row.service.ports),
    5: ("lbVsProtocol", "string", lambda row, c, f: row.service.protocol),
    6: ("lbVsStatus", "integer", lambda row, c, f: STATUS_CODES.get(row.css, 0)),
    7: ("lbVsStatusText", "string", lambda row, c, f: row.words),
    8: ("lbVsActiveConns", "gauge", lambda row, c, f: c.active),
    9: ("lbVsInactiveConns", "gauge", lambda row, c, f: c.inactive),
    10: ("lbVsFallbackActiveConns", "gauge", lambda row, c, f: f.active),
    11: ("lbVsFallbackInactiveConns", "gauge", lambda row, c, f: f.inactive),
}
# column number -> (name, type, value of a (ServerRow, counts))
RS_COLUMNS = {
    1: ("lbRsServiceIndex", "integer", lambda row, c: row.server.service_id),
    2: ("lbRsIndex", "integer", lambda row, c: row.server.id),
    3: ("lbRsLabel", "string", lambda row, c: row.server.label),
    4: ("lbRsAddress", "string", lambda row, c: row.server.ip),
    5: ("lbRsPorts", "string", lambda row, c: row.server.ports_display),
    6: ("lbRsWeight", "integer", lambda row, c: row.server.weight),
    7: ("lbRsAdminState", "integer", lambda row, c: ADMIN_STATES.get(row.server.state, 0)),
    8: ("lbRsStatus", "integer", lambda row, c: STATUS_CODES.get(row.css, 0)),
    9: ("lbRsStatusText", "string", lambda row, c: row.words),
    10: ("lbRsHealth", "string", lambda row, c: row.health),
    11: ("lbRsActiveConns", "gauge", lambda row, c: c.active),
    12: ("lbRsInactiveConns", "gauge", lambda row, c: c.inactive),
}
COUNT_COLUMNS = {"lbVsActiveConns", "lbVsInactiveConns", "lbVsFallbackActiveConns",
                 "lbVsFallbackInactiveConns", "lbRsActiveConns", "lbRsInactiveConns"}


def parse_oid(text):
    """'.1.3.6.1' (or '1.3.6.1') -> (1, 3, 6, 1); None for anything else."""
    parts = text.strip().strip(".").split(".")
    try:
        oid = tuple(int(part) for part in parts)
    except ValueError:
        return None
    return oid if oid and all(0 <= n < 2**32 for n in oid) else None


def format_oid(oid):
    return "." + ".".join(map(str, oid))


def _value(kind, value):
    """A value as pass_persist writes it: one line; numbers in their type's range."""
    if kind == "string":
        text = " ".join(str(value).splitlines())
        return text[:STRING_MAX]
    number = int(value)
    if kind == "gauge":
        return str(max(0, min(number, GAUGE_MAX)))
    return str(number)


@dataclass(frozen=True)
class Tree:
    """Every (oid, type, value) of the subtree, in OID order (tuples of ints compare as SNMP
    orders OIDs: lexicographically, number by number), answering GET and GETNEXT."""

    entries: tuple
    oids: tuple

    @classmethod
    def of(cls, entries):
        ordered = tuple(sorted(entries, key=lambda entry: entry[0]))
        return cls(ordered, tuple(oid for oid, _kind, _value in ordered))

    def get(self, oid):
        at = bisect.bisect_left(self.oids, oid)
        if at < len(self.oids) and self.oids[at] == oid:
            return self.entries[at]
        return None

    def next(self, oid):
        """The first entry after `oid` (which need not exist), or None past the end."""
        at = bisect.bisect_right(self.oids, oid)
        return self.entries[at] if at < len(self.entries) else None


def build_tree(rows, states, sampled_at, problem):
    """The subtree from Layer 4 Status's rows (clusters.status.ServiceRow, with their
    ServerRows) and the sampler's {mark: {"active", "inactive"}} (`states`; None when it
    cannot be read: the counts are left out). Made column by column, services and servers by
    id: already in OID order, so Tree.of's sort only checks it (a third of the time a walk
    of 1,000 services took went on sorting them otherwise)."""
    known = states is not None
    states = states or {}
    services, servers = [], []  # (row, counts, fallback counts), (service id, row, counts)
    for row in sorted(rows, key=lambda row: row.service.id):
        fallback = fallback_counts(states, row.service.id) if row.service.fallback_ip \
            else Counts()
        total = fallback
        for server_row in row.servers:
            counts = counts_of(states, server_row.server.id)
            servers.append((row.service.id, server_row, counts))
            total = total.add(counts)
        services.append((row, total, fallback))
    servers.sort(key=lambda item: (item[0], item[1].server.id))
    entries = [((*BASE, 1, column, 0), kind, _value(kind, value))
               for column, kind, value in ((1, "gauge", len(services)),
                                           (2, "gauge", len(servers)),
                                           (3, "gauge", int(sampled_at)),
                                           (4, "string", problem))]
    for column, (name, kind, read) in VS_COLUMNS.items():
        if known or name not in COUNT_COLUMNS:
            entries += [((*BASE, 2, 1, column, row.service.id), kind,
                         _value(kind, read(row, total, fallback)))
                        for row, total, fallback in services]
    for column, (name, kind, read) in RS_COLUMNS.items():
        if known or name not in COUNT_COLUMNS:
            entries += [((*BASE, 3, 1, column, service_id, server_row.server.id), kind,
                         _value(kind, read(server_row, counts)))
                        for service_id, server_row, counts in servers]
    return Tree.of(entries)


def snapshot():
    """The subtree as the appliance is now (a few queries; the agent keeps it ~1 s)."""
    layer4 = layer4_status()
    problem = f"Redis is down ({layer4.redis_error}): states are partly unknown" \
        if layer4.redis_error else ""
    try:
        sampled_at, states = runtime.read_connection_states(redis_client())
    except (redis.RedisError, OSError) as error:
        sampled_at, states = 0.0, None
        problem = f"Redis is down ({error}): the connection counts cannot be read"
    return build_tree(layer4.rows, states, sampled_at, problem)
