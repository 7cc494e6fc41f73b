"""The data plane's runtime state in Redis: what is live, the last apply's result, live
connection counts. Written by the workers, read by the WebUI."""

import json
import time
from dataclasses import dataclass

from core.runtime import redis_client

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


def record_applied(generation, mode, milliseconds, warnings=(), unplaced=()):
    status = read_status()
    status.applied_generation = max(status.applied_generation, generation)
    status.error = "" if status.applied_generation >= status.failed_generation else status.error
    status.at, status.mode, status.milliseconds = time.time(), mode, round(milliseconds, 1)
    status.warnings = tuple(warnings)
    status.unplaced = frozenset(unplaced)
    _write(status, with_unplaced=True)


def record_failed(generation, error):
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


def record_connections(counts):
    redis_client().set(CONNECTIONS_KEY, json.dumps({"at": time.time(), "counts": counts}))


def read_connections(client=None):
    """{mark: open connections} as last sampled, or {} if never sampled."""
    raw = (client or redis_client()).get(CONNECTIONS_KEY)
    if not raw:
        return {}
    return {int(mark): count for mark, count in json.loads(raw)["counts"].items()}


def read_overloaded(client=None):
    raw = (client or redis_client()).get(OVERLOADED_KEY)
    return frozenset(json.loads(raw)) if raw else frozenset()


def write_overloaded(marks):
    redis_client().set(OVERLOADED_KEY, json.dumps(sorted(marks)))
