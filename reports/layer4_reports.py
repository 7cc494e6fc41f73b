"""Reports › Layer 4 Status and Layer 4 Current Connections: what they show, apart from the
views (no seam here: the connections are read by the reader worker, reports.tasks).

Where each figure comes from:
- state, weight, health: System Overview's rows (clusters.status), the same words and colours;
- active / inactive connections: the reader worker's sampler (clusters.tasks, every 2 s)
  reads conntrack once and records per mark how many are ESTABLISHED (active) and in any other
  state (inactive), as IPVS counts ActiveConn and InActConn (clusters.runtime);
- "since": for the administrator's state (Online/Drain/Halt), the audit trail's newest line
  that set it ("set real server <label> of <service> to Halt", Logs › User Log), else the line
  that added the server; for health, healthchecks' ServerHealth row, written with each
  transition's HealthEvent (Logs › Health Checks). Both are in the database, so they survive
  a restart of Redis or of the appliance.
- the connections: the kernel's conntrack table, read live (filtered by the kernel) and paged
  by the reader worker (clusters.dataplane.conntrack.list_connections) — never the sampler's
  figures, so a connection Halt cut is gone from the next page.
"""

import ipaddress
from dataclasses import dataclass, field
from datetime import datetime

from django.db.models import Q
from django.utils import timezone

from clusters.dataplane.desired import FALLBACK_BIT, MASQ_BIT, SERVICE_KEY_BIT
from clusters.models import RealServer, VirtualService
from core.models import AuditEntry
from healthchecks.models import ServerHealth

ALL_BITS = 0xFFFFFFFF
FLAG_BITS = FALLBACK_BIT | MASQ_BIT | SERVICE_KEY_BIT
PER_PAGE = 100  # connections per page


# ---- Current Connections -------------------------------------------------------------------

@dataclass
class ConnectionFilter:
    """The filters of Current Connections, cleaned: a service, a real server (an id, or
    "fallback" for a service's fallback server), a client address, a page."""

    service: VirtualService | None = None
    server: RealServer | None = None
    fallback_of: VirtualService | None = None
    client: str = ""
    page: int = 1
    errors: list = field(default_factory=list)

    @classmethod
    def from_query(cls, params):
        chosen = cls()
        service_id = params.get("service", "")
        if service_id:
            chosen.service = VirtualService.objects.filter(pk=_int(service_id)).first()
            if chosen.service is None:
                chosen.errors.append("That virtual service does not exist (any more).")
        server = params.get("server", "")
        if server.startswith("fallback-"):
            chosen.fallback_of = VirtualService.objects.filter(
                pk=_int(server.removeprefix("fallback-"))).first()
            if chosen.fallback_of is None:
                chosen.errors.append("That fallback server's virtual service does not exist.")
        elif server:
            chosen.server = RealServer.objects.filter(pk=_int(server)).select_related(
                "service").first()
            if chosen.server is None:
                chosen.errors.append("That real server does not exist (any more).")
        client = params.get("client", "").strip()
        if client:
            try:
                chosen.client = str(ipaddress.IPv4Address(client))
            except ValueError:
                chosen.errors.append(f"“{client[:50]}” is not a client IPv4 address "
                                     f"(e.g. 198.51.100.10).")
        chosen.page = max(1, _int(params.get("page", "1")) or 1)
        return chosen

    @property
    def offset(self):
        return (self.page - 1) * PER_PAGE

    def marks(self):
        """The (value, mask) pairs to ask conntrack for (`--mark value/mask`), None for every
        lbadmin mark, [] when the filters exclude each other (nothing to list)."""
        return marks_for(self.service, self.server, self.fallback_of)

    def params(self, page=None):
        params = {}
        if self.service:
            params["service"] = str(self.service.pk)
        if self.server:
            params["server"] = str(self.server.pk)
        elif self.fallback_of:
            params["server"] = f"fallback-{self.fallback_of.pk}"
        if self.client:
            params["client"] = self.client
        page = self.page if page is None else page
        if page > 1:
            params["page"] = str(page)
        return params


def _int(text):
    try:
        return int(text)
    except (TypeError, ValueError):
        return 0


def fallback_pair(service_id):
    """The fallback server's marks of a service, MASQ or not: FALLBACK_BIT | id, MASQ_BIT
    left out of the mask."""
    return (FALLBACK_BIT | service_id, ALL_BITS & ~MASQ_BIT)


def marks_for(service=None, server=None, fallback_of=None):
    if server is not None:
        if service is not None and server.service_id != service.pk:
            return []
        return [(server.pk, ALL_BITS)]
    if fallback_of is not None:
        if service is not None and fallback_of.pk != service.pk:
            return []
        return [fallback_pair(fallback_of.pk)]
    if service is not None:
        return [*((pk, ALL_BITS) for pk in service.real_servers.values_list("pk", flat=True)),
                fallback_pair(service.pk)]
    return None


@dataclass
class MarkName:
    service: str
    server: str  # the real server's label, "Fallback server" or what the mark is
    address: str
    fallback: bool = False
    known: bool = True


def name_marks(marks):
    """{mark: MarkName} for the marks of one page: a real server by its id, a fallback by its
    service's id; a mark no row names any more (a deleted server) said as such."""
    server_ids = {m for m in marks if not m & FLAG_BITS}
    service_ids = {m & ~FLAG_BITS for m in marks if m & (FALLBACK_BIT | SERVICE_KEY_BIT)}
    servers = RealServer.objects.filter(pk__in=server_ids).select_related("service").in_bulk()
    services = VirtualService.objects.filter(pk__in=service_ids).in_bulk()
    names = {}
    for mark in marks:
        if mark & FALLBACK_BIT:
            service = services.get(mark & ~FLAG_BITS)
            names[mark] = MarkName(service.label, "Fallback server", service.fallback_ip, True) \
                if service else MarkName("", f"fallback of a deleted service (mark {mark:#x})",
                                         "", True, False)
        elif mark & SERVICE_KEY_BIT:
            service = services.get(mark & ~FLAG_BITS)
            names[mark] = MarkName(service.label if service else "",
                                   "no server (none was available)", "", known=False)
        else:
            server = servers.get(mark)
            names[mark] = MarkName(server.service.label, server.label, server.ip) if server \
                else MarkName("", f"deleted real server (mark {mark})", "", known=False)
    return names


@dataclass
class ConnectionRow:
    protocol: str
    client: str
    vip: str
    service: str
    server: str
    server_address: str  # where conntrack says the connection went
    fallback: bool
    state: str
    timeout: int

    @property
    def timeout_words(self):
        minutes, seconds = divmod(self.timeout, 60)
        hours, minutes = divmod(minutes, 60)
        if hours:
            return f"{hours} h {minutes:02} min"
        return f"{minutes} min {seconds:02} s" if minutes else f"{seconds} s"


def connection_rows(answer):
    """The worker's answer (reports.tasks.list_connections) as rows to show."""
    tracked = answer.get("rows", [])
    names = name_marks({row["mark"] for row in tracked})
    rows = []
    for row in tracked:
        name = names[row["mark"]]
        port = f":{row['vip_port']}" if row["vip_port"] else ""
        client_port = f":{row['client_port']}" if row["client_port"] else ""
        server_port = f":{row['server_port']}" if row["server_port"] else ""
        rows.append(ConnectionRow(
            row["protocol"], f"{row['client']}{client_port}", f"{row['vip']}{port}",
            name.service, name.server, f"{row['server']}{server_port}", name.fallback,
            row["state"] or "—", row["timeout"]))
    return rows


@dataclass
class Paging:
    page: int
    per_page: int
    total: int
    shown: int

    @property
    def pages(self):
        return max(1, -(-self.total // self.per_page))

    @property
    def first(self):
        return (self.page - 1) * self.per_page + 1 if self.shown else 0

    @property
    def last(self):
        return (self.page - 1) * self.per_page + self.shown


# ---- Layer 4 Status ------------------------------------------------------------------------

def state_since(servers):
    """{server id: datetime} when each real server's administrator state was last set: the
    audit trail's newest "set real server <label> of <service> to …" line, else the line that
    added it. A server renamed since keeps only what was written under its present name."""
    servers = list(servers)
    if not servers:
        return {}
    wanted = Q()
    for server in servers:
        wanted |= Q(action__startswith=f"set real server {server.label} of "
                                       f"{server.service.label} to ")
        wanted |= Q(action__startswith=f"added real server {server.label} ({server.ip}) of "
                                       f"{server.service.label}")
    since = {}
    prefixes = [(server.id, f"set real server {server.label} of {server.service.label} to ",
                 f"added real server {server.label} ({server.ip}) of {server.service.label}")
                for server in servers]
    entries = AuditEntry.objects.filter(wanted).order_by("-at", "-id").values_list("at",
                                                                                    "action")
    added = {}
    for at, action in entries:
        for server_id, set_prefix, add_line in prefixes:
            if server_id not in since and action.startswith(set_prefix):
                since[server_id] = at
            elif server_id not in added and action == add_line:
                added[server_id] = at
    return {server_id: since.get(server_id) or added.get(server_id)
            for server_id, _s, _a in prefixes if since.get(server_id) or added.get(server_id)}


def health_since(server_ids):
    """{server id: datetime} of each server's last health transition (healthchecks'
    ServerHealth, written with each HealthEvent)."""
    zone = timezone.get_current_timezone()
    return {row.real_server_id: datetime.fromtimestamp(row.changed_at, tz=zone)
            for row in ServerHealth.objects.filter(real_server_id__in=list(server_ids))}


@dataclass
class Counts:
    active: int = 0
    inactive: int = 0

    def add(self, other):
        return Counts(self.active + other.active, self.inactive + other.inactive)


def counts_of(states, mark):
    tally = states.get(mark)
    return Counts(tally["active"], tally["inactive"]) if tally else Counts()


def fallback_counts(states, service_id):
    """Both fallback marks of a service (with and without MASQ_BIT)."""
    return counts_of(states, FALLBACK_BIT | service_id).add(
        counts_of(states, FALLBACK_BIT | MASQ_BIT | service_id))


@dataclass
class StatusServer:
    row: object  # clusters.status.ServerRow
    counts: Counts
    state_since: datetime | None
    health_since: datetime | None

    @property
    def since(self):
        """When the row entered the state it shows: the later of its two sources."""
        moments = [m for m in (self.state_since, self.health_since) if m]
        return max(moments) if moments else None


@dataclass
class StatusService:
    row: object  # clusters.status.ServiceRow
    counts: Counts
    servers: list
    fallback_counts: Counts
    fallback_in_use: bool
    since: datetime | None


def status_rows(rows, states):
    """Layer 4 Status's rows: System Overview's, with the connection states and since when."""
    servers = [r.server for row in rows for r in row.servers]
    admin = state_since(servers)
    health = health_since(s.id for s in servers)
    shown = []
    for row in rows:
        status_servers = [StatusServer(r, counts_of(states, r.server.id), admin.get(r.server.id),
                                       health.get(r.server.id)) for r in row.servers]
        fallback = fallback_counts(states, row.service.id) if row.service.fallback_ip \
            else Counts()
        total = fallback
        for server in status_servers:
            total = total.add(server.counts)
        moments = [m for s in status_servers for m in (s.state_since, s.health_since) if m]
        shown.append(StatusService(row, total, status_servers, fallback,
                                   "Fallback server in use" in row.words,
                                   max(moments) if moments else None))
    return shown
