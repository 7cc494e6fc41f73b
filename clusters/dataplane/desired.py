"""The data plane's desired state as plain data, built from the database and runtime state.

Marks: every (virtual service, real server) pair has its own connection mark — the real
server row's id, since a real server row belongs to one service — so a Halt cuts that pair's
connections only (`conntrack -D --mark`). A service's fallback server gets FALLBACK_BIT | the
service's id; MASQ_BIT on top asks the postrouting chain to masquerade. While a new
connection's server is picked, its mark briefly holds SERVICE_KEY_BIT | the service's id.
"""

from dataclasses import dataclass, field

from ..models import FloatingIP, RealServer, VirtualService
from ..validators import parse_ports_cached

NONE_MARK = 0  # no server and no fallback: no DNAT, the VIP's own stack refuses the connection
SERVICE_KEY_BIT = 0x20000000  # a service's key in the mark while its server is being picked
FALLBACK_BIT = 0x40000000
MASQ_BIT = 0x80000000


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
    floating_ips: frozenset = frozenset()


def fallback_mark(service_id, masq):
    return FALLBACK_BIT | service_id | (MASQ_BIT if masq else 0)


def from_database(overloaded=frozenset(), connections=None, down=frozenset()):
    """Read the configuration (two flat queries: this runs on every apply, and the ORM's
    prefetch cost 60 ms at 1,000 services). Runtime state: `overloaded`, marks past their
    maximum; `down`, real servers their health checks took out."""
    servers_by_service = {}
    for rs_id, service_id, ip, port, weight, state, maximum in RealServer.objects.order_by(
            "id").values_list("id", "service_id", "ip", "port", "weight", "state",
                              "max_connections"):
        servers_by_service.setdefault(service_id, []).append(
            (rs_id, ip, port, weight, state, maximum))
    services = []
    for (sid, vip, ports, protocol, scheduler, persistent, timeout, check_type, fallback_ip,
         fallback_port, masq, on_failure) in VirtualService.objects.order_by("id").values_list(
            "id", "vip", "ports", "protocol", "scheduler", "persistent", "persistence_timeout",
            "check_type", "fallback_ip", "fallback_port", "fallback_masq", "on_failure"):
        checks_off = check_type == VirtualService.CheckType.ALWAYS_OFF
        checked = check_type in VirtualService.CHECKED
        servers = []
        for rs_id, ip, port, weight, state, maximum in servers_by_service.get(sid, ()):
            failed = checked and rs_id in down
            usable = not checks_off and not failed and rs_id not in overloaded
            servers.append(Server(
                mark=rs_id, ip=ip, port=port, weight=weight,
                available=usable and state == RealServer.State.ONLINE,
                sticky=usable and state in (RealServer.State.ONLINE, RealServer.State.DRAIN),
                cut=state == RealServer.State.HALT or (
                    failed and on_failure == VirtualService.OnFailure.CUT),
                max_connections=maximum,
            ))
        fallback = None
        if fallback_ip:
            fallback = Fallback(fallback_mark(sid, masq), fallback_ip, fallback_port or None)
        services.append(Service(
            id=sid, vip=vip, port_ranges=parse_ports_cached(ports),
            protocols=VirtualService.protocols_of(protocol), scheduler=scheduler,
            persistence_timeout=timeout if persistent else None,
            servers=tuple(servers), fallback=fallback,
        ))
    floating = frozenset(FloatingIP.objects.values_list("address", flat=True))
    return Desired(tuple(services), dict(connections or {}), floating)
