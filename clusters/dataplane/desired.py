"""The data plane's desired state as plain data, built from the database and runtime state.

Marks: every (virtual service, real server) pair has its own connection mark — the real
server row's id, since a real server row belongs to one service — so a Halt cuts that pair's
connections only (`conntrack -D --mark`). A service's fallback server gets FALLBACK_BIT | the
service's id; MASQ_BIT on top asks the postrouting chain to masquerade. While a new
connection's server is picked, its mark briefly holds SERVICE_KEY_BIT | the service's id.
"""

from dataclasses import dataclass, field

NONE_MARK = 0  # no server and no fallback: no DNAT, the VIP's own stack refuses the connection
SERVICE_KEY_BIT = 0x20000000  # a service's key in the mark while its server is being picked
FALLBACK_BIT = 0x40000000
MASQ_BIT = 0x80000000
MAX_ID = 0x1FFFFFFF  # real server and service ids stay below the bits


@dataclass(frozen=True)
class Server:
    mark: int
    ip: str
    port: int | None  # None: the port the client asked for
    weight: int
    available: bool  # may take new connections
    sticky: bool  # persistent clients may stay (online or drain)
    cut: bool  # halted: open connections are cut
    max_connections: int = 0


@dataclass(frozen=True)
class Fallback:
    mark: int
    ip: str
    port: int | None


@dataclass(frozen=True)
class Service:
    id: int
    vip: str
    port_ranges: tuple  # ((low, high), ...)
    protocols: tuple  # ("tcp",) / ("udp",) / ("tcp", "udp")
    scheduler: str  # "wrr" / "wlc"
    persistence_timeout: int | None  # None: no persistence
    servers: tuple
    fallback: Fallback | None


@dataclass(frozen=True)
class Desired:
    services: tuple
    connections: dict = field(default_factory=dict)  # mark -> open connections (for wlc)


def fallback_mark(service_id, masq):
    return FALLBACK_BIT | service_id | (MASQ_BIT if masq else 0)


def from_database(overloaded=frozenset(), connections=None):
    """Read the configuration. `overloaded`: marks past their maximum (runtime state)."""
    from ..models import RealServer, VirtualService

    services = []
    for vs in VirtualService.objects.prefetch_related("real_servers").order_by("id"):
        checks_off = vs.check_type == VirtualService.CheckType.ALWAYS_OFF
        servers = []
        for rs in sorted(vs.real_servers.all(), key=lambda r: r.id):
            usable = not checks_off and rs.id not in overloaded
            servers.append(Server(
                mark=rs.id, ip=rs.ip, port=rs.port, weight=rs.weight,
                available=usable and rs.state == RealServer.State.ONLINE,
                sticky=usable and rs.state in (RealServer.State.ONLINE, RealServer.State.DRAIN),
                cut=rs.state == RealServer.State.HALT,
                max_connections=rs.max_connections,
            ))
        fallback = None
        if vs.fallback_ip:
            fallback = Fallback(fallback_mark(vs.id, vs.fallback_masq), vs.fallback_ip,
                                vs.fallback_port or None)
        services.append(Service(
            id=vs.id, vip=vs.vip, port_ranges=tuple(vs.port_ranges), protocols=vs.protocols,
            scheduler=vs.scheduler,
            persistence_timeout=vs.persistence_timeout if vs.persistent else None,
            servers=tuple(servers), fallback=fallback,
        ))
    return Desired(tuple(services), dict(connections or {}))
