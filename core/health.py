"""Each real server's health: a state machine (pure) and its state in Redis.

Consecutive failures are counted; any success resets the count; a server goes down at Failure
Count and comes up again on its first success. Only a change of state (a transition) reaches
the data plane.

Health survives edits: only a change of *what is checked* (the check's fingerprint: its type,
script, ports, request, host, expected answer, the server's address...) restarts the count,
and never the state — a down server stays down until the new check first passes. Failure
Count, interval, timeout and the rest apply from the next check on.

Health survives Redis: Redis keeps nothing across a restart or a reboot, so each transition is
also stored in the database (by healthchecks, which registers a loader here from its
AppConfig.ready(): core imports no app). While the MARKER key is absent, Redis has lost the
health keys, and the first reader puts the stored states back before it reads.
"""

import json
from dataclasses import asdict, dataclass, field

import redis

from .runtime import redis_client

DOWN_SET = "lbadmin:health:down"
MARKER = "lbadmin:health:restored"  # absent: Redis lost the health keys (a restart, a reboot)


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
    fingerprint: str = ""  # of what was checked (healthchecks' Target.fingerprint); "": unknown


def step(health, ok, failure_count):
    """The state machine. Returns "down", "up" or None (no transition).

    `failure_count` is the service's current one: a changed Failure Count applies to the
    counting from now on (the failures counted so far still count)."""
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


def rebase(health, fingerprint):
    """Before counting a result of the check whose fingerprint is `fingerprint`: when what is
    checked changed, the failures counted by the old check no longer count (the new one counts
    afresh), but the state stays — a down server comes up only on the new check's first
    success. Returns True if the count restarted."""
    changed = bool(health.fingerprint) and health.fingerprint != fingerprint
    if changed:
        health.fails = 0
    health.fingerprint = fingerprint
    return changed


# The loader: () -> {server id: Health} the database kept (the down servers); None until
# registered.
_loader = None

# Put the stored states back, unless someone did already (the MARKER) — atomically, and without
# overwriting a state written since Redis came back (a check that ran meanwhile is newer).
# KEYS: MARKER, DOWN_SET, then one key per server; ARGV: per server its JSON, state and id.
_RESTORE = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
for i = 3, #KEYS do
  local j = (i - 3) * 3
  if redis.call('SET', KEYS[i], ARGV[j + 1], 'NX') and ARGV[j + 2] == 'down' then
    redis.call('SADD', KEYS[2], ARGV[j + 3])
  end
end
redis.call('SET', KEYS[1], '1')
return 1
"""


def register_loader(loader):
    global _loader
    _loader = loader


def restore(client=None):
    """Put the database's states back into Redis if Redis lost them. Returns True if it did.
    Without a registered loader nothing is known, and the marker stays absent."""
    client = client or redis_client()
    if _loader is None or client.exists(MARKER):
        return False
    states = _loader()
    keys, args = [MARKER, DOWN_SET], []
    for server_id, health in states.items():
        keys.append(key(server_id))
        args += [json.dumps(asdict(health)), health.state, str(server_id)]
    return bool(client.eval(_RESTORE, len(keys), *keys, *args))


def _read(client, *commands):
    """Run the read `commands` (name, args) with an EXISTS of the marker in one round trip;
    if Redis lost the health keys, restore them and read again."""
    for _attempt in range(2):
        pipe = client.pipeline()
        pipe.exists(MARKER)
        for name, args in commands:
            getattr(pipe, name)(*args)
        present, *results = pipe.execute()
        if present or _loader is None:
            return results
        restore(client)  # by this reader or, meanwhile, by another one: read again
    return results


def _decode(raw):
    if not raw:
        return Health()
    data = json.loads(raw)
    data["ports"] = {int(p): r for p, r in data.get("ports", {}).items()}
    return Health(**data)


def load(server_id, client=None):
    (raw,) = _read(client or redis_client(), ("get", (key(server_id),)))
    return _decode(raw)


def load_many(server_ids, client=None):
    ids = list(server_ids)
    if not ids:
        return {}
    (raws,) = _read(client or redis_client(), ("mget", ([key(i) for i in ids],)))
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
    (members,) = _read(client or redis_client(), ("smembers", (DOWN_SET,)))
    return frozenset(int(m) for m in members)


def down_servers_or_stored(client=None):
    """down_servers, or while Redis is down the states the database keeps (the registered
    loader): the data plane's applies need no Redis to keep a failed server out."""
    try:
        return down_servers(client)
    except (redis.RedisError, OSError):
        states = _loader() if _loader else {}
        return frozenset(server for server, state in states.items() if state.state == "down")


def forget(server_ids):
    """Drop the state of servers that no longer exist (deleted). Edits never forget: see the
    module's docstring."""
    ids = list(server_ids)
    if not ids:
        return
    client = redis_client()
    pipe = client.pipeline()
    pipe.delete(*[key(i) for i in ids])
    pipe.srem(DOWN_SET, *ids)
    pipe.execute()
