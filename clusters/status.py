"""What System Overview shows for Layer 4: configuration joined with runtime state.

Truthful: a row is green only when its traffic can flow. Besides the administrator's state and
the health checks, a row turns red with the reason when its VIP could not be placed (no
interface's subnet holds it: the dataplane worker records these), when an address is also held
by another object (core.configuration's rule, for configurations saved before it), or when a
real or fallback server is on no subnet the stored interfaces, static routes or default
gateways reach.

Light: the overview shows one page of services (PER_PAGE, after an optional search), and its
poll carries the digest of what it shows, so an unchanged page costs a 204 and no HTML. The
digest is taken from the rows' data, never from rendered HTML (which holds the time).
"""

import dataclasses
import hashlib
import ipaddress
import threading
from dataclasses import dataclass, field
from datetime import datetime

import redis
from django.db.models.signals import post_delete, post_save
from django.utils import timezone

from core import configuration
from core import health as health_state
from core.runtime import redis_client
from network.forms import connected_networks
from network.models import NetworkConfiguration

from . import runtime
from .dataplane.desired import fallback_mark
from .models import ConfigGeneration, FloatingIP, RealServer, VirtualService

WORDS = {"up": "Online", "drain": "Online (drain)", "halt": "Online (halt)"}
PER_PAGE = 50


@dataclass
class ServerRow:
    server: RealServer
    conns: int
    css: str  # up / drain / halt / full / down / pending
    words: str
    weight: str
    pending: bool
    health: str = ""  # "up", "failing 2 of 10", "down", "no checks", "not checked yet"
    checked_at: float = 0.0
    problem: str = ""  # why traffic cannot reach it (address), "" when nothing is known wrong
    scheduled: bool = False  # the data plane sends it new connections

    @property
    def checked_clock(self):
        """The last check's time of day (absolute, so a page that is not redrawn while nothing
        changes never shows an age that has grown stale)."""
        moment = datetime.fromtimestamp(self.checked_at, tz=timezone.get_current_timezone())
        return moment.strftime("%H:%M:%S")

    def key(self):
        s = self.server
        return (s.id, s.label, s.ip, s.ports_display, s.state, self.weight, self.conns,
                self.css, self.words, self.health, self.checked_at)


@dataclass
class ServiceRow:
    service: VirtualService
    conns: int
    css: str
    words: str
    servers: list = field(default_factory=list)

    @property
    def red(self):
        """Something in this service is red: the service or one of its real servers."""
        return self.css == "down" or any(r.css == "down" for r in self.servers)

    def key(self):
        s = self.service
        return (s.id, s.label, s.vip, s.ports, s.protocol, s.forwarding, s.fallback_ip,
                self.conns, self.css, self.words, tuple(r.key() for r in self.servers))

    def matches(self, needle):
        """The search box: a label, a VIP or a real server's label or address, any part of
        it, any case."""
        if not needle:
            return True
        service = self.service
        return any(needle in text.casefold() for text in (
            service.label, service.vip, *(r.server.label for r in self.servers),
            *(r.server.ip for r in self.servers)))


def health_words(service, health):
    if service.check_type not in VirtualService.CHECKED:
        return "no checks"
    if health is None:
        return "unknown (Redis is down)"
    if health.state == "down":
        return "down"
    if not health.checked_at:
        return "not checked yet"
    if health.fails:
        return f"failing {health.fails} of {service.failure_count}"
    return "up"


class AddressProblems:
    """Why traffic to or from an address cannot flow, as the configuration and the last apply
    say: not placed on any interface (VIPs), held twice, or out of every interface's, route's
    and gateway's reach (real and fallback servers)."""

    def __init__(self, unplaced=frozenset(), holders=(), network=None):
        self.unplaced = frozenset(unplaced)
        # address -> kind -> up to two holders: enough to find one other than the asker
        self.by_address = {}
        for holder in holders:
            kept = self.by_address.setdefault(holder.address, {}).setdefault(holder.kind, [])
            if len(kept) < 2:
                kept.append(holder)
        # Until the dataplane worker first recorded the interfaces, nothing is known of them:
        # then no server is called unreachable.
        self.known = bool(network and network.interfaces)
        if self.known:
            self.networks = connected_networks([], network.interfaces)
            self.gateways = {4: bool(network.gateway4), 6: bool(network.gateway6)}
            self.routes = []
            for route in network.routes or []:
                try:
                    self.routes.append(ipaddress.ip_network(route["destination"], strict=False))
                except (KeyError, TypeError, ValueError):
                    continue
        self._reach = {}

    @classmethod
    def load(cls, apply_status):
        """From the stored configuration and the last apply (None: Redis is down)."""
        return cls(apply_status.unplaced if apply_status else (), configuration.holders(),
                   NetworkConfiguration.objects.filter(pk=1).first())

    def clash(self, address, kind, key):
        """The other holder of `address` the configuration-wide rule does not allow."""
        for other_kind, held in self.by_address.get(address, {}).items():
            if frozenset({kind, other_kind}) in configuration.MAY_SHARE:
                continue
            for holder in held:
                if holder.key != key:
                    return holder
        return None

    def unreachable(self, address):
        if not self.known:
            return False
        if address not in self._reach:
            try:
                parsed = ipaddress.ip_address(address)
            except ValueError:
                return False
            self._reach[address] = not (
                self.gateways.get(parsed.version)
                or any(parsed.version == n.version and parsed in n
                       for n in (*self.networks, *self.routes)))
        return self._reach[address]

    def vip(self, service):
        if service.vip in self.unplaced:
            return (f"VIP {service.vip} could not be placed: no interface has a subnet "
                    f"holding it")
        other = self.clash(service.vip, configuration.VIP, ("service", service.id))
        if other is not None:
            return f"VIP {service.vip} is also {other.words}"
        return ""

    def backend(self, address, key):
        other = self.clash(address, configuration.BACKEND, key)
        if other is not None:
            return f"{address} is also {other.words}"
        if self.unreachable(address):
            return (f"{address} is on no interface's subnet and no static route or default "
                    f"gateway leads to it")
        return ""


NO_PROBLEMS = AddressProblems()


def server_row(server, conns, overloaded, checks_off, apply_status, health=None, down=None,
               problems=NO_PROBLEMS):
    """`down`: the ids of servers their health check took down (else read from `health`)."""
    # Unknown when Redis is down: then the page says so once, rather than every row guessing.
    pending = apply_status is not None and \
        apply_status.state_for(server.changed_generation) == "applying"
    checked = server.service.check_type in VirtualService.CHECKED
    failed = checked and (server.id in down if down is not None
                          else health is not None and health.state == "down")
    problem = problems.backend(server.ip, ("realserver", server.id))
    scheduled = server.state == RealServer.State.ONLINE and not checks_off and not failed \
        and server.weight > 0
    if problem:
        css, words = "down", f"Down: {problem}"
    elif server.state == RealServer.State.HALT:
        css, words = "halt", WORDS["halt"]
    elif server.state == RealServer.State.DRAIN:
        css, words = "drain", WORDS["drain"]
    elif checks_off:
        css, words = "down", "Down (checks: always off)"
    elif failed:
        css, words = "down", "Down (health check failed)"
    elif server.id in overloaded:
        css, words = "full", f"Full ({server.max_connections} connections)"
    else:
        css, words = "up", WORDS["up"]
    weight = server.state if server.state != RealServer.State.ONLINE else str(server.weight)
    if pending:
        css, words = "pending", f"{words}: applying…"
    return ServerRow(server, conns.get(server.id, 0), css, words, weight, pending,
                     health_words(server.service, health) if health is not None or down is None
                     else "", health.checked_at if health else 0.0, problem, scheduled)


def service_row(service, conns, overloaded, apply_status, healths, down=None,
                problems=NO_PROBLEMS):
    checks_off = service.check_type == VirtualService.CheckType.ALWAYS_OFF
    rows = [server_row(s, conns, overloaded, checks_off, apply_status, healths.get(s.id),
                       down, problems)
            for s in service.real_servers.all()]
    total = sum(r.conns for r in rows)
    if service.fallback_ip:
        total += conns.get(fallback_mark(service.id, service.fallback_masq), 0)
    vip_problem = problems.vip(service)
    # scheduled by the data plane, yet out of reach: the connections sent there fail
    broken = [r for r in rows if r.problem and r.scheduled]
    online = any(r.css == "up" and r.server.weight > 0 for r in rows)
    fallback_problem = problems.backend(service.fallback_ip, ("fallback", service.id)) \
        if service.fallback_ip else ""
    if vip_problem:
        css, words = "down", f"Down: {vip_problem}"
    elif broken:
        first = broken[0]
        what = f"real server “{first.server.label}” cannot be reached: {first.problem}"
        if online:
            css, words = "down", f"Partly down: new connections sent to {what}"
        else:
            css, words = "down", f"Down: {what}"
    elif online:
        css, words = "up", "Online"
    elif service.fallback_ip and fallback_problem:
        css, words = "down", (f"Down: no real server available, and the fallback server "
                              f"cannot be reached: {fallback_problem}")
    elif rows and all(r.css in ("halt", "drain") for r in rows) and service.fallback_ip:
        css, words = "halt", "Fallback server in use (real servers halted or drained)"
    elif service.fallback_ip:
        css, words = "down", "Fallback server in use (no real server available)"
    else:
        css, words = "down", "Down: no real server available and no fallback server"
    return ServiceRow(service, total, css, words, rows)


@dataclass
class Layer4View:
    """Which services the overview shows: the search, the page, the counts."""

    query: str = ""
    page: int = 1
    pages: int = 1
    problems_only: bool = False
    total: int = 0  # every virtual service
    red: int = 0  # services with a red row
    matching: int = 0  # services the search (and the red-only filter) keeps
    first: int = 0  # 1-based positions shown, among the matching ones
    last: int = 0

    def params(self, page=None):
        params = {}
        if self.query:
            params["q"] = self.query
        if self.problems_only:
            params["problems"] = "1"
        page = self.page if page is None else page
        if page > 1:
            params["page"] = str(page)
        return params

    @property
    def previous_params(self):
        return self.params(self.page - 1) if self.page > 1 else None

    @property
    def next_params(self):
        return self.params(self.page + 1) if self.page < self.pages else None

    def key(self):
        return (self.query, self.page, self.pages, self.problems_only, self.total, self.red,
                self.matching, self.first, self.last)


@dataclass
class Layer4Status:
    rows: list
    apply: runtime.ApplyStatus | None  # None: Redis did not answer, so what is live is unknown
    generation: int
    redis_error: str = ""
    view: Layer4View | None = None

    @property
    def state(self):
        return self.apply.state_for(self.generation) if self.apply else "unknown"

    @property
    def digest(self):
        """Of everything the Layer 4 partial shows, from the data (not the HTML)."""
        apply = self.apply
        shown = (
            self.state, self.redis_error,
            (apply.error, apply.mode, apply.milliseconds, apply.warnings) if apply else None,
            self.view.key() if self.view else None,
            tuple(row.key() for row in self.rows),
        )
        return hashlib.blake2b(repr(shown).encode(), digest_size=12).hexdigest()


class _Memo:
    """One remembered value per process, with the inputs it was worked out from: with 20
    viewers polling every 5 s, the rows of 1,000 services are worked out again only when
    something they depend on changed, not per poll. The configuration's part is keyed by its
    generation (bumped by every change to it) and the stored network configuration; the rows
    by that and every runtime input. Shared by the web process's threads: a value is replaced
    whole, never changed in place."""

    def __init__(self):
        self.entry = (None, None)  # (key, value), replaced in one assignment
        self.lock = threading.Lock()  # one thread works a new value out; the others wait

    def get(self, key, work):
        remembered_key, value = self.entry
        if remembered_key == key:
            return value
        with self.lock:
            remembered_key, value = self.entry
            if remembered_key != key:
                value = work()
                self.entry = (key, value)
            return value

    def forget(self):
        self.entry = (None, None)


_services = _Memo()  # generation -> [VirtualService with its real servers]
_holders = _Memo()  # (generation, network) -> holders of addresses
_rows = _Memo()  # every input -> (every service's row, AddressProblems)


def network_key(network):
    if network is None:
        return None
    return (network.interfaces, network.gateway4, network.gateway6, network.routes)


def all_rows(generation, apply_status, conns, overloaded, down):
    """Every service's row (health from the set of down servers; address problems in red)."""
    network = NetworkConfiguration.objects.filter(pk=1).first()
    key = (generation, network_key(network), apply_status, conns, overloaded, down)

    def work():
        services = _services.get(generation, lambda: list(
            VirtualService.objects.prefetch_related("real_servers")))
        holders = _holders.get((generation, network_key(network)), configuration.holders)
        problems = AddressProblems(apply_status.unplaced if apply_status else (), holders,
                                   network)
        return [service_row(s, conns, overloaded, apply_status, {}, down, problems)
                for s in services]

    return _rows.get(key, work)


def forget_remembered(**_signal):
    """Start afresh: on any save or delete of what the rows show, in this process — the
    generation covers every change made through the actions, in any process; this also
    covers a test database emptied under the same generation."""
    for memo in (_services, _holders, _rows):
        memo.forget()


for _model in (VirtualService, RealServer, FloatingIP, NetworkConfiguration):
    for _signal in (post_save, post_delete):
        _signal.connect(forget_remembered, sender=_model,
                        dispatch_uid=f"layer4-forget-{_model.__name__}-{_signal is post_save}")


def layer4_status(with_rows=True, query="", page=1, problems_only=False, per_page=None):
    """What System Overview shows. Without rows only the apply state is read: the banners that
    poll every second on other pages need no service, health or connection count.

    With rows: every service's row is worked out (the counts and the red-only filter need
    them all; the health of a server then comes from the set of down servers), and the
    servers of the rows shown — the search's, one page of `per_page` when given — get their
    full health (failing counts, last check), read for them alone."""
    generation = ConfigGeneration.current()
    if not with_rows:
        try:
            return Layer4Status([], runtime.read_status(redis_client()), generation)
        except (redis.RedisError, OSError) as error:
            return Layer4Status([], None, generation, str(error) or type(error).__name__)
    try:
        client = redis_client()
        apply_status = runtime.read_status(client)
        conns = runtime.read_connections(client)
        overloaded = runtime.read_overloaded(client)
        down = health_state.down_servers(client)
    except (redis.RedisError, OSError) as error:
        client, apply_status, conns, overloaded, down = None, None, {}, frozenset(), frozenset()
        redis_error = str(error) or type(error).__name__
    else:
        redis_error = ""
    rows = all_rows(generation, apply_status, conns, overloaded, down)
    needle = query.strip().casefold()
    matching = [row for row in rows if (row.red or not problems_only) and row.matches(needle)]
    pages = max(1, -(-len(matching) // per_page)) if per_page else 1
    page = min(max(1, page), pages)
    start = (page - 1) * per_page if per_page else 0
    shown = matching[start:start + per_page] if per_page else matching
    view = Layer4View(query.strip(), page, pages, problems_only, len(rows),
                      sum(row.red for row in rows), len(matching),
                      start + 1 if shown else 0, start + len(shown))
    healths = {}
    if client is not None:
        try:
            healths = health_state.load_many(
                [r.server.id for row in shown for r in row.servers], client)
        except (redis.RedisError, OSError) as error:
            redis_error = str(error) or type(error).__name__
    # The rows shown get their servers' full health, on copies: the remembered rows are
    # shared by every request of this process.
    shown = [dataclasses.replace(row, servers=[
        dataclasses.replace(server, health=health_words(row.service, health),
                            checked_at=health.checked_at if health else 0.0)
        for server in row.servers for health in [healths.get(server.server.id)]])
        for row in shown]
    return Layer4Status(shown, apply_status, generation, redis_error, view)
