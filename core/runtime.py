"""Runtime state read by the web process: Redis, the worker queues, beat, the host.

Nothing here is stored in the database; every figure is read when asked, so System Overview
never shows a value older than its own refresh. Worker liveness is read from heartbeats each
worker writes itself (a key per queue it consumes, with a short expiry), so System Overview
asks Redis once instead of broadcasting a ping and waiting out its timeout.
"""

import json
import logging
import os
import socket
import threading
import time
from dataclasses import dataclass, field

import redis
from django.conf import settings
from redis.backoff import NoBackoff
from redis.retry import Retry

from .queues import QUEUES

BEAT_HEARTBEAT_KEY = "lbadmin:beat:heartbeat"
BEAT_HEARTBEAT_STALE_AFTER = 30  # seconds: three missed 10 s heartbeats
# Each worker writes lbadmin:worker:<queue>:<hostname> every WORKER_HEARTBEAT_EVERY seconds,
# expiring after WORKER_HEARTBEAT_TTL: a worker that dies disappears within the TTL (and at
# once when it stops cleanly); System Overview polls every 5 s, so it is red within ~15 s.
WORKER_HEARTBEAT_PREFIX = "lbadmin:worker:"
WORKER_HEARTBEAT_EVERY = 3
WORKER_HEARTBEAT_TTL = 10
# The supervisor (runner/supervisor.py) takes requests from this list and publishes what it
# runs under the state key, which expires when it stops publishing.
SUPERVISOR_REQUESTS_KEY = "lbadmin:supervisor:requests"
SUPERVISOR_STATE_KEY = "lbadmin:supervisor:state"
SUPERVISOR_STATE_TTL = 5  # seconds: a state older than this means no supervisor is running
# ... and it answers on its own unix socket in the data directory (0600), which needs no Redis:
# one JSON line in ({"state": true} or {"request": {...}}), one JSON line out.
SUPERVISOR_SOCKET_NAME = "supervisor.sock"
SUPERVISOR_SOCKET_TIMEOUT = 2.0
# What the supervisor runs (Maintenance > Restart Services lists them in this order).
SERVICES = ("redis", "web", "worker-dataplane", "worker-reader", "worker-checks",
            "worker-maintenance", "beat", "keepalived", "conntrackd", "vrrp-notify", "chronyd",
            "snmpd")
# The HA pair's services (issue 13), in start order: conntrackd before keepalived (ha-recipe
# F8), and the reader of keepalived's notify FIFO (ha.notify) before keepalived, so keepalived
# finds the FIFO it made. They run only where <data>/ha/keepalived.conf exists (the ha app
# writes it); elsewhere Restart Services says "not configured".
HA_SERVICES = ("conntrackd", "vrrp-notify", "keepalived")
# <data>/ha: what the ha app renders and what keepalived and conntrackd write at run time.
HA_DIR_NAME = "ha"
KEEPALIVED_CONF_NAME = "keepalived.conf"
CONNTRACKD_CONF_NAME = "conntrackd.conf"
HA_NOTIFY_SCRIPT_NAME = "notify.sh"  # unused by lbadmin: keepalived runs no script (ha.render)
VRRP_FIFO_NAME = "vrrp.fifo"  # keepalived's notify_fifo, read by ha.notify
VRRP_STATE_NAME = "vrrp-state"
KEEPALIVED_PID_NAME = "keepalived.pid"
KEEPALIVED_VRRP_PID_NAME = "keepalived-vrrp.pid"
CONNTRACKD_LOCK_NAME = "conntrackd.lock"
CONNTRACKD_SOCKET_NAME = "conntrackd.ctl"
CONNTRACKD_LOG_NAME = "conntrackd.log"
# chronyd (Local Configuration > System Date & time) runs only where the network app wrote its
# configuration, <etc>/chrony/chrony.conf (LBADMIN_ETC_DIR: /etc on an appliance, so Debian's
# own path; <data>/etc otherwise); what it writes at run time (pid file, command socket,
# drift file) lives in <data>/chrony, never in the host's /run/chrony or /var/lib/chrony.
CHRONY_CONF_PATH = "chrony/chrony.conf"
CHRONY_DIR_NAME = "chrony"
CHRONY_PID_NAME = "chronyd.pid"
CHRONY_SOCKET_NAME = "chronyd.sock"
CHRONY_DRIFT_NAME = "chronyd.drift"
# snmpd (Local Configuration > SNMP Configuration) runs only where the network app wrote
# <data>/snmp/snmpd.conf (SNMP enabled); its persistent state (engine boots, localized v3
# keys) lives in <data>/snmp/persist, never in the host's /var/lib/snmp.
SNMP_DIR_NAME = "snmp"
SNMPD_CONF_NAME = "snmpd.conf"
SNMP_PERSIST_DIR_NAME = "persist"


log = logging.getLogger("lbadmin.runtime")
_clients = {}


def redis_client(timeout=1.0):
    """A client per (Redis URL, timeout), kept for the process: making one reads package
    metadata and opens a pool, which cost most of a health check's CPU when done per call.
    It tries once more at once (a connection Redis closed when it restarted) and then says
    Redis is down: redis-py's default retries with backoff held pages and applies for
    seconds while Redis was down."""
    key = (settings.REDIS_URL, timeout)
    client = _clients.get(key)
    if client is None:
        client = _clients[key] = redis.Redis.from_url(
            settings.REDIS_URL, socket_timeout=timeout, socket_connect_timeout=timeout,
            retry=Retry(NoBackoff(), 1))
    return client


def supervisor_socket_path():
    return settings.DATA_DIR / SUPERVISOR_SOCKET_NAME


def supervisor_call(message, timeout=SUPERVISOR_SOCKET_TIMEOUT):
    """One exchange with the supervisor over its unix socket: the answer (a dict). OSError or
    ValueError when no supervisor listens there or it answered nonsense."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(str(supervisor_socket_path()))
        sock.sendall(json.dumps(message).encode() + b"\n")
        answer = b""
        while not answer.endswith(b"\n"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            answer += chunk
    reply = json.loads(answer)
    if not isinstance(reply, dict):
        raise ValueError("the supervisor answered no object")
    return reply


def supervisor_state():
    """What the supervisor runs (services, pids, release, restarts), or None when no
    supervisor is running. Asked on its socket first (it needs no Redis, and is never stale);
    what it last published in Redis when the socket cannot be reached."""
    try:
        return supervisor_call({"state": True})["state"]
    except (OSError, ValueError, KeyError):
        pass
    try:
        raw = redis_client().get(SUPERVISOR_STATE_KEY)
    except (redis.RedisError, OSError):
        return None
    return json.loads(raw) if raw else None


def record_beat_heartbeat(when):
    redis_client().set(BEAT_HEARTBEAT_KEY, repr(when), ex=3600)


def worker_heartbeat_key(queue, hostname):
    return f"{WORKER_HEARTBEAT_PREFIX}{queue}:{hostname}"


def record_worker_heartbeat(hostname, queues, client=None):
    """One key per queue the worker consumes, alive for WORKER_HEARTBEAT_TTL seconds."""
    pipe = (client or redis_client()).pipeline(transaction=False)
    for queue in queues:
        pipe.set(worker_heartbeat_key(queue, hostname), repr(time.time()),
                 ex=WORKER_HEARTBEAT_TTL)
    pipe.execute()


def forget_worker_heartbeat(hostname, queues, client=None):
    """A worker that stops cleanly is gone at once, not after its keys expire."""
    keys = [worker_heartbeat_key(queue, hostname) for queue in queues]
    if keys:
        (client or redis_client()).delete(*keys)


class WorkerHeartbeat(threading.Thread):
    """A daemon thread in a worker's main process writing its heartbeat keys until stopped
    (started by core.tasks on celery's worker_ready, stopped on worker_shutdown). A Redis
    outage is logged once and retried; the keys come back with Redis."""

    def __init__(self, hostname, queues, every=WORKER_HEARTBEAT_EVERY):
        super().__init__(name="lbadmin-worker-heartbeat", daemon=True)
        self.hostname, self.queues, self.every = hostname, tuple(queues), every
        self.stopped = threading.Event()

    def run(self):
        failing = False
        while not self.stopped.is_set():
            try:
                record_worker_heartbeat(self.hostname, self.queues)
                failing = False
            except (redis.RedisError, OSError) as error:
                if not failing:
                    log.warning("worker heartbeat not written: %s", error)
                failing = True
            self.stopped.wait(self.every)

    def stop(self):
        self.stopped.set()
        self.join(timeout=self.every + 1)
        try:
            forget_worker_heartbeat(self.hostname, self.queues)
        except (redis.RedisError, OSError) as error:
            log.warning("worker heartbeat not removed (it expires by itself): %s", error)


_heartbeat = None  # this worker process's WorkerHeartbeat, if it runs one


def start_worker_heartbeat(hostname, queues):
    global _heartbeat
    stop_worker_heartbeat()
    _heartbeat = WorkerHeartbeat(hostname, queues)
    _heartbeat.start()
    return _heartbeat


def stop_worker_heartbeat():
    global _heartbeat
    if _heartbeat is not None:
        _heartbeat.stop()
        _heartbeat = None


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


def service_status():
    """Redis, each worker queue and beat, in one Redis round trip: beat's heartbeat and every
    worker's heartbeat keys. A queue without a live key has no worker: the page says so
    rather than guessing. (A ping per request waited out its whole timeout whenever a
    worker was missing, and held a WebUI thread meanwhile.)"""
    queues = [QueueStatus(name) for name in QUEUES]
    try:
        pipe = redis_client().pipeline(transaction=False)
        pipe.get(BEAT_HEARTBEAT_KEY)
        # KEYS over a keyspace of a few thousand keys (health states) takes well under a
        # millisecond, and unlike SCAN it is one round trip.
        pipe.keys(f"{WORKER_HEARTBEAT_PREFIX}*")
        raw, keys = pipe.execute()
    except (redis.RedisError, OSError) as error:
        return ServiceStatus(False, str(error) or type(error).__name__, queues, None)
    beat_age = time.time() - float(raw) if raw else None
    alive = workers_by_heartbeat(keys)
    for queue in queues:
        queue.workers = alive[queue.name]
    return ServiceStatus(True, "", queues, beat_age)


def workers_by_heartbeat(keys):
    """{queue: [worker names]} from the live heartbeat keys (bytes or str)."""
    alive = {name: [] for name in QUEUES}
    for key in keys:
        text = key.decode() if isinstance(key, bytes) else key
        queue, _, hostname = text.removeprefix(WORKER_HEARTBEAT_PREFIX).partition(":")
        if queue in alive and hostname:
            alive[queue].append(hostname)
    return {queue: sorted(names) for queue, names in alive.items()}


def workers_by_queue(celery_app, timeout):
    """{queue: [names of workers that answered within timeout and consume it]}: a broadcast
    ping, for the runner's start-up wait (System Overview reads heartbeats instead)."""
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
