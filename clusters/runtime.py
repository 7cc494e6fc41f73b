"""The data plane's runtime state in Redis: what is live, the last apply's result, live
connection counts. Written by the workers, read by the WebUI."""

import json
import time
from dataclasses import dataclass

from core.runtime import redis_client

STATUS_KEY = "lbadmin:dataplane:status"
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

    def state_for(self, generation):
        """'applied', 'failed' or 'applying' for the configuration at `generation`."""
        if self.applied_generation >= generation:
            return "applied"
        if self.failed_generation >= generation:
            return "failed"
        return "applying"


def read_status(client=None):
    raw = (client or redis_client()).get(STATUS_KEY)
    if not raw:
        return ApplyStatus()
    data = json.loads(raw)
    data["warnings"] = tuple(data.get("warnings", ()))
    return ApplyStatus(**data)


def record_applied(generation, mode, milliseconds, warnings=()):
    status = read_status()
    status.applied_generation = max(status.applied_generation, generation)
    status.error = "" if status.applied_generation >= status.failed_generation else status.error
    status.at, status.mode, status.milliseconds = time.time(), mode, round(milliseconds, 1)
    status.warnings = tuple(warnings)
    _write(status)


def record_failed(generation, error):
    status = read_status()
    status.failed_generation = max(status.failed_generation, generation)
    status.error, status.at = error, time.time()
    _write(status)


def _write(status):
    data = status.__dict__ | {"warnings": list(status.warnings)}
    redis_client().set(STATUS_KEY, json.dumps(data))


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
