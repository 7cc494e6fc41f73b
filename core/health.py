"""Each real server's health: a state machine (pure) and its state in Redis.

Consecutive failures are counted; any success resets the count; a server goes down at Failure
Count and comes up again on its first success. Only a change of state (a transition) reaches
the data plane.
"""

import json
from dataclasses import asdict, dataclass, field

from .runtime import redis_client

DOWN_SET = "lbadmin:health:down"


def key(server_id):
    return f"lbadmin:health:server:{server_id}"


@dataclass
class Health:
    state: str = "up"  # up / down
    fails: int = 0
    checked_at: float = 0.0  # 0: not checked yet
    message: str = ""
    output: str = ""
    ports: dict = field(default_factory=dict)


def step(health, ok, failure_count):
    """The state machine. Returns "down", "up" or None (no transition)."""
    if ok:
        health.fails = 0
        if health.state == "down":
            health.state = "up"
            return "up"
        return None
    health.fails += 1
    if health.state == "up" and health.fails >= failure_count:
        health.state = "down"
        return "down"
    return None


def _decode(raw):
    if not raw:
        return Health()
    data = json.loads(raw)
    data["ports"] = {int(p): r for p, r in data.get("ports", {}).items()}
    return Health(**data)


def load(server_id, client=None):
    return _decode((client or redis_client()).get(key(server_id)))


def load_many(server_ids, client=None):
    ids = list(server_ids)
    raws = (client or redis_client()).mget([key(i) for i in ids]) if ids else []
    return {server_id: _decode(raw) for server_id, raw in zip(ids, raws, strict=True)}


def save(server_id, health):
    client = redis_client()
    pipe = client.pipeline()
    pipe.set(key(server_id), json.dumps(asdict(health)))
    if health.state == "down":
        pipe.sadd(DOWN_SET, server_id)
    else:
        pipe.srem(DOWN_SET, server_id)
    pipe.execute()


def down_servers(client=None):
    return frozenset(int(m) for m in (client or redis_client()).smembers(DOWN_SET))


def forget(server_ids):
    """Start these servers afresh (their checks changed): up, no failures counted."""
    ids = list(server_ids)
    if not ids:
        return
    client = redis_client()
    pipe = client.pipeline()
    pipe.delete(*[key(i) for i in ids])
    pipe.srem(DOWN_SET, *ids)
    pipe.execute()
