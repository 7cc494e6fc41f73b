"""What System Overview shows for Layer 4: configuration joined with runtime state."""

from dataclasses import dataclass, field

import redis

from core import health as health_state
from core.runtime import redis_client

from . import runtime
from .dataplane.desired import fallback_mark
from .models import ConfigGeneration, RealServer, VirtualService

WORDS = {"up": "Online", "drain": "Online (drain)", "halt": "Online (halt)"}


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


@dataclass
class ServiceRow:
    service: VirtualService
    conns: int
    css: str
    words: str
    servers: list = field(default_factory=list)


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


def server_row(server, conns, overloaded, checks_off, apply_status, health=None):
    # Unknown when Redis is down: then the page says so once, rather than every row guessing.
    pending = apply_status is not None and \
        apply_status.state_for(server.changed_generation) == "applying"
    if server.state == RealServer.State.HALT:
        css, words = "halt", WORDS["halt"]
    elif server.state == RealServer.State.DRAIN:
        css, words = "drain", WORDS["drain"]
    elif checks_off:
        css, words = "down", "Down (checks: always off)"
    elif health is not None and health.state == "down" and \
            server.service.check_type in VirtualService.CHECKED:
        css, words = "down", "Down (health check failed)"
    elif server.id in overloaded:
        css, words = "full", f"Full ({server.max_connections} connections)"
    else:
        css, words = "up", WORDS["up"]
    weight = server.state if server.state != RealServer.State.ONLINE else str(server.weight)
    if pending:
        css, words = "pending", f"{words}: applying…"
    return ServerRow(server, conns.get(server.id, 0), css, words, weight, pending,
                     health_words(server.service, health),
                     health.checked_at if health else 0.0)


def service_row(service, conns, overloaded, apply_status, healths):
    checks_off = service.check_type == VirtualService.CheckType.ALWAYS_OFF
    rows = [server_row(s, conns, overloaded, checks_off, apply_status, healths.get(s.id))
            for s in service.real_servers.all()]
    total = sum(r.conns for r in rows)
    if service.fallback_ip:
        total += conns.get(fallback_mark(service.id, service.fallback_masq), 0)
    if any(r.css == "up" and r.server.weight > 0 for r in rows):
        css, words = "up", "Online"
    elif rows and all(r.css in ("halt", "drain") for r in rows) and service.fallback_ip:
        css, words = "halt", "Fallback server in use (real servers halted or drained)"
    elif service.fallback_ip:
        css, words = "down", "Fallback server in use (no real server available)"
    else:
        css, words = "down", "Down: no real server available and no fallback server"
    return ServiceRow(service, total, css, words, rows)


@dataclass
class Layer4Status:
    rows: list
    apply: runtime.ApplyStatus | None  # None: Redis did not answer, so what is live is unknown
    generation: int
    redis_error: str = ""

    @property
    def state(self):
        return self.apply.state_for(self.generation) if self.apply else "unknown"


def layer4_status(with_rows=True):
    """What System Overview shows. Without rows only the apply state is read: the banners that
    poll every second on other pages need no service, health or connection count."""
    generation = ConfigGeneration.current()
    services = list(VirtualService.objects.prefetch_related("real_servers")) if with_rows \
        else []
    try:
        client = redis_client()
        apply_status = runtime.read_status(client)
        if with_rows:
            conns = runtime.read_connections(client)
            overloaded = runtime.read_overloaded(client)
            healths = health_state.load_many(
                [rs.id for s in services for rs in s.real_servers.all()], client)
    except (redis.RedisError, OSError) as error:
        apply_status, conns, overloaded, healths = None, {}, frozenset(), {}
        redis_error = str(error) or type(error).__name__
    else:
        redis_error = ""
    rows = [service_row(s, conns, overloaded, apply_status, healths) for s in services]
    return Layer4Status(rows, apply_status, generation, redis_error)
