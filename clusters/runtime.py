"""The data plane's runtime state in Redis: what is live, the last apply's result, live
connection counts. Written by the workers, read by the WebUI."""

import json
import logging
import threading
import time
from dataclasses import dataclass

import redis
from django.db import transaction

from core.runtime import redis_client

from .models import ApplyLogEntry

log = logging.getLogger("lbadmin.dataplane")
# Results of applies made while Redis was down, in order, written once it answers again
# (flush_pending); the newest few are enough: each holds the highest generations.
_pending = []
_pending_lock = threading.Lock()
PENDING_KEPT = 8
# The last runtime figures read, for an apply while Redis is down (the database says what
# to apply; these only refine it: overloaded servers, least-connection shares).
_last_overloaded = frozenset()
_last_connections = {}

STATUS_KEY = "lbadmin:dataplane:status"
# The addresses (VIPs, floating IPs) the last apply could not place, apart from STATUS_KEY:
# a release before this one builds its ApplyStatus from every field of STATUS_KEY and would
# refuse an unknown one after a rollback.
UNPLACED_KEY = "lbadmin:dataplane:unplaced"
CONNECTIONS_KEY = "lbadmin:dataplane:connections"
OVERLOADED_KEY = "lbadmin:dataplane:overloaded"


@dataclass
class ApplyStatus:
    applied_generation: int = -1  # the newest generation live in the kernel
    failed_generation: int = -1  # the newest generation the kernel refused
    error: str = ""
    at: float = 0.0
    mode: str = ""
    milliseconds: float = 0.0
    warnings: tuple = ()
    unplaced: frozenset = frozenset()  # addresses no interface's subnet holds (not placed)

    def state_for(self, generation):
        """'applied', 'failed' or 'applying' for the configuration at `generation`."""
        if self.applied_generation >= generation:
            return "applied"
        if self.failed_generation >= generation:
            return "failed"
        return "applying"


FIELDS = frozenset(ApplyStatus.__dataclass_fields__) - {"unplaced"}


def read_status(client=None):
    raw, unplaced = (client or redis_client()).mget(STATUS_KEY, UNPLACED_KEY)
    if not raw:
        return ApplyStatus(unplaced=frozenset(json.loads(unplaced)) if unplaced else frozenset())
    data = {key: value for key, value in json.loads(raw).items() if key in FIELDS}
    data["warnings"] = tuple(data.get("warnings", ()))
    return ApplyStatus(**data, unplaced=frozenset(json.loads(unplaced)) if unplaced
                       else frozenset())


def _record(kind, *args):
    """Record an apply's result; with Redis down, keep it for flush_pending (never raise:
    the apply itself reached the kernel, or failed, whatever Redis does)."""
    with _pending_lock:
        try:
            _flush_locked()
            RECORDERS[kind](*args)
        except (redis.RedisError, OSError) as error:
            if not _pending:
                log.warning("apply result not recorded (Redis down: %s); kept until it is "
                            "back", error)
            _pending.append((kind, args))
            del _pending[:-PENDING_KEPT]


def _flush_locked():
    while _pending:
        kind, args = _pending[0]
        RECORDERS[kind](*args)
        _pending.pop(0)


def flush_pending():
    """Write the results kept while Redis was down. True when nothing is left to write."""
    with _pending_lock:
        try:
            _flush_locked()
        except (redis.RedisError, OSError):
            return False
    return True


def record_applied(generation, mode, milliseconds, warnings=(), unplaced=(), statements=None,
                   cut=()):
    _record("applied", generation, mode, milliseconds, tuple(warnings), tuple(unplaced))
    # after Redis: the WebUI's "Applied" never waits on a busy database
    log_apply(generation=generation, ok=True, mode=mode, milliseconds=milliseconds,
              warnings=warnings, statements=statements, cut=cut)


def record_failed(generation, error, mode="", stage=""):
    _record("failed", generation, error)
    log_apply(generation=generation, ok=False, mode=mode, stage=stage, error=error)


# Logs > Layer 4 keeps this many applies (the newest); older rows are deleted as new ones come.
APPLY_LOG_KEPT = 5000


def log_apply(generation, ok, mode="", milliseconds=None, warnings=(), statements=None, cut=(),
              stage="", error=""):
    """One row of Logs > Layer 4. Never raises: the apply happened (or failed) whatever the
    database does; a row that cannot be written is logged and forgotten."""
    try:
        with transaction.atomic():  # a savepoint inside a caller's transaction
            entry = ApplyLogEntry.objects.create(
                generation=generation, ok=ok, mode=mode or "",
                milliseconds=None if milliseconds is None else round(milliseconds, 1),
                warnings="\n".join(warnings), statements=statements,
                cut=" ".join(str(mark) for mark in cut)[:500], stage=stage[:100],
                error=error or "")
            ApplyLogEntry.objects.filter(id__lte=entry.id - APPLY_LOG_KEPT).delete()
    except Exception as problem:  # noqa: BLE001 - the log must never make an apply fail
        log.warning("apply of generation %s not written to Logs > Layer 4: %s", generation,
                    problem)


def _write_applied(generation, mode, milliseconds, warnings=(), unplaced=()):
    status = read_status()
    status.applied_generation = max(status.applied_generation, generation)
    status.error = "" if status.applied_generation >= status.failed_generation else status.error
    status.at, status.mode, status.milliseconds = time.time(), mode, round(milliseconds, 1)
    status.warnings = tuple(warnings)
    status.unplaced = frozenset(unplaced)
    _write(status, with_unplaced=True)


def _write_failed(generation, error):
    status = read_status()
    status.failed_generation = max(status.failed_generation, generation)
    status.error, status.at = error, time.time()
    _write(status)


def _write(status, with_unplaced=False):
    data = {key: value for key, value in status.__dict__.items() if key in FIELDS}
    data["warnings"] = list(status.warnings)
    pipe = redis_client().pipeline()  # MULTI/EXEC: a reader sees both or neither
    pipe.set(STATUS_KEY, json.dumps(data))
    if with_unplaced:
        pipe.set(UNPLACED_KEY, json.dumps(sorted(status.unplaced)))
    pipe.execute()


RECORDERS = {"applied": _write_applied, "failed": _write_failed}


def record_connections(counts):
    redis_client().set(CONNECTIONS_KEY, json.dumps({"at": time.time(), "counts": counts}))


def read_connections(client=None):
    """{mark: open connections} as last sampled, or {} if never sampled; with Redis down,
    what this process read last."""
    global _last_connections
    try:
        raw = (client or redis_client()).get(CONNECTIONS_KEY)
    except (redis.RedisError, OSError):
        return dict(_last_connections)
    _last_connections = {int(mark): count for mark, count in json.loads(raw)["counts"].items()} \
        if raw else {}
    return dict(_last_connections)


CONNECTION_STATES_KEY = "lbadmin:dataplane:connection-states"


def record_connection_states(tally):
    """Reports › Layer 4 Status's figures: {mark: {"active", "inactive", "closed"}} from the
    sampler's reading of conntrack (clusters.dataplane.conntrack.tally_lines)."""
    redis_client().set(CONNECTION_STATES_KEY, json.dumps({"at": time.time(), "marks": tally}))


def read_connection_states(client=None):
    """(when sampled, {mark: {"active", "inactive", "closed"}}); (0, {}) if never sampled."""
    raw = (client or redis_client()).get(CONNECTION_STATES_KEY)
    if not raw:
        return 0.0, {}
    data = json.loads(raw)
    return data["at"], {int(mark): counts for mark, counts in data["marks"].items()}


def read_overloaded(client=None):
    """The marks of overloaded servers; with Redis down, what this process read last."""
    global _last_overloaded
    try:
        raw = (client or redis_client()).get(OVERLOADED_KEY)
    except (redis.RedisError, OSError):
        return _last_overloaded
    _last_overloaded = frozenset(json.loads(raw)) if raw else frozenset()
    return _last_overloaded


def write_overloaded(marks):
    redis_client().set(OVERLOADED_KEY, json.dumps(sorted(marks)))
