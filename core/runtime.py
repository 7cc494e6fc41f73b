"""Runtime state read by the web process: Redis, the worker queues, beat, the host.

Nothing here is stored in the database; every figure is read when asked, so System Overview
never shows a value older than its own refresh.
"""

import json
import os
import time
from dataclasses import dataclass, field

import redis
from celery import current_app
from django.conf import settings

from .queues import QUEUES

BEAT_HEARTBEAT_KEY = "lbadmin:beat:heartbeat"
BEAT_HEARTBEAT_STALE_AFTER = 30  # seconds: three missed 10 s heartbeats
# The supervisor (runner/supervisor.py) takes requests from this list and publishes what it
# runs under the state key, which expires when it stops publishing.
SUPERVISOR_REQUESTS_KEY = "lbadmin:supervisor:requests"
SUPERVISOR_STATE_KEY = "lbadmin:supervisor:state"
SUPERVISOR_STATE_TTL = 5  # seconds: a state older than this means no supervisor is running
# What the supervisor runs (Maintenance > Restart Services lists them in this order).
SERVICES = ("redis", "web", "worker-dataplane", "worker-checks", "worker-maintenance", "beat")


_clients = {}


def redis_client(timeout=1.0):
    """A client per (Redis URL, timeout), kept for the process: making one reads package
    metadata and opens a pool, which cost most of a health check's CPU when done per call."""
    key = (settings.REDIS_URL, timeout)
    client = _clients.get(key)
    if client is None:
        client = _clients[key] = redis.Redis.from_url(
            settings.REDIS_URL, socket_timeout=timeout, socket_connect_timeout=timeout)
    return client


def supervisor_state():
    """What the supervisor last published (services, pids, release), or None when no
    supervisor is running or Redis cannot be read."""
    try:
        raw = redis_client().get(SUPERVISOR_STATE_KEY)
    except (redis.RedisError, OSError):
        return None
    return json.loads(raw) if raw else None


def record_beat_heartbeat(when):
    redis_client().set(BEAT_HEARTBEAT_KEY, repr(when), ex=3600)


@dataclass
class QueueStatus:
    name: str
    workers: list = field(default_factory=list)

    @property
    def answering(self):
        return bool(self.workers)


@dataclass
class ServiceStatus:
    redis_ok: bool
    redis_error: str
    queues: list
    beat_age: float | None  # seconds since beat's last heartbeat ran; None if never seen

    @property
    def beat_ok(self):
        return self.beat_age is not None and self.beat_age < BEAT_HEARTBEAT_STALE_AFTER


def service_status(timeout=1.0):
    """Ping Redis, then ask every worker which queues it consumes (a Celery broadcast).

    A worker that does not answer within `timeout` counts as down: the page says so rather
    than guessing.
    """
    queues = [QueueStatus(name) for name in QUEUES]
    try:
        client = redis_client(timeout)
        client.ping()
        raw = client.get(BEAT_HEARTBEAT_KEY)
    except (redis.RedisError, OSError) as error:
        return ServiceStatus(False, str(error) or type(error).__name__, queues, None)
    beat_age = time.time() - float(raw) if raw else None
    answered = workers_by_queue(current_app, timeout)
    for queue in queues:
        queue.workers = answered[queue.name]
    return ServiceStatus(True, "", queues, beat_age)


def workers_by_queue(celery_app, timeout):
    """{queue: [names of workers that answered within timeout and consume it]}."""
    replies = celery_app.control.inspect(timeout=timeout).active_queues() or {}
    answered = {name: [] for name in QUEUES}
    for worker, consumed in sorted(replies.items()):
        for queue in consumed:
            if queue["name"] in answered:
                answered[queue["name"]].append(worker)
    return answered


@dataclass
class HostFigures:
    uptime_seconds: float
    load: tuple
    memory_total_kib: int
    memory_available_kib: int

    @property
    def memory_used_percent(self):
        used = self.memory_total_kib - self.memory_available_kib
        return round(100 * used / self.memory_total_kib) if self.memory_total_kib else 0


def read_meminfo(text):
    values = {}
    for line in text.splitlines():
        key, _, rest = line.partition(":")
        parts = rest.split()
        if parts:
            values[key] = int(parts[0])
    return values["MemTotal"], values.get("MemAvailable", values.get("MemFree", 0))


def host_figures():
    with open("/proc/uptime") as handle:
        uptime = float(handle.read().split()[0])
    with open("/proc/meminfo") as handle:
        total, available = read_meminfo(handle.read())
    return HostFigures(uptime, os.getloadavg(), total, available)
