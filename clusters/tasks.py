"""Tasks of the data plane. They take no model instances: they reload what they need.

The dataplane worker also runs a GenerationWatcher: a thread that reads the configuration's
generation from the database every WATCH_EVERY seconds and applies when it is ahead of what is
live, so Halt, Drain and Online reach the kernel while Redis (the broker) is down or being
restarted; the results are written to Redis once it is back."""

import contextlib
import fcntl
import logging
import os
import threading
import time

from celery import shared_task
from celery.signals import worker_init, worker_ready, worker_shutdown
from django.conf import settings
from django.db import connection

from network.tasks import apply_network_from_database

from . import runtime
from .dataplane import apply, conntrack
from .models import ConfigGeneration, RealServer, VirtualService

log = logging.getLogger("lbadmin.dataplane")
WATCH_EVERY = 0.5  # seconds between two reads of the generation
LOCK_NAME = "dataplane.lock"

_in_process = threading.Lock()
_token = f"{os.getpid()}:{time.time()}"  # this process, as the last writer of the kernel
_live_generation = -1  # the newest generation this process applied (or saw fail)


@contextlib.contextmanager
def one_writer():
    """Only one apply at a time, also across processes (a prefork worker's children, the
    watcher in its main process): an exclusive lock on <data>/dataplane.lock, which names the
    last process that applied; if that was another one, what this process thinks is live is
    stale, so the next apply is a full one."""
    with _in_process, open(settings.DATA_DIR / LOCK_NAME, "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        handle.seek(0)
        if handle.read().strip() != _token:
            apply.forget_live()
        try:
            yield
        finally:
            handle.seek(0)
            handle.truncate()
            handle.write(_token)
            handle.flush()


def apply_now(full=False):
    global _live_generation
    with one_writer():
        result = apply.apply_dataplane(full=full)
    if result.get("generation") is not None:
        # The generation applied, not the highest seen: an HA Secondary takes the Primary's
        # number, which may be lower than its own was (ha.replication).
        _live_generation = result["generation"]
    return result


@shared_task(ignore_result=True)  # nobody waits for it
def apply_dataplane(full=False):
    return apply_now(full=full)


class GenerationWatcher(threading.Thread):
    """Applies whenever the configuration's generation in the database is ahead of what this
    process last applied — no broker needed, so a Halt reaches the kernel with Redis down."""

    def __init__(self, every=WATCH_EVERY):
        super().__init__(name="lbadmin-generation-watcher", daemon=True)
        self.every = every
        self.stopping = threading.Event()

    def run(self):
        try:
            while not self.stopping.wait(self.every):
                try:
                    self.tick()
                except Exception:  # a watcher that died would stop watching: log, go on
                    log.exception("the generation watcher could not apply")
        finally:
            connection.close()  # this thread's own database connection

    def tick(self):
        # "differs", not "is ahead": a replicated generation may be lower than the last one
        # applied here (an HA Secondary takes the Primary's number), and must still apply.
        if ConfigGeneration.current() != _live_generation:
            apply_now()

    def stop(self):
        self.stopping.set()
        if self.is_alive() and threading.current_thread() is not self:
            self.join(timeout=10)


_watcher = None


def start_watcher():
    global _watcher
    if _watcher is None:
        _watcher = GenerationWatcher()
        _watcher.start()
    return _watcher


def _consumes_dataplane(sender):
    return "dataplane" in sender.app.amqp.queues.consume_from


@worker_init.connect(dispatch_uid="lbadmin-generation-watcher-init")
def watch_generation_at_init(sender=None, **_kwargs):
    """A solo worker starts watching before it reaches the broker (Redis may be down); a
    prefork one waits for worker_ready, after its pool forked."""
    if _consumes_dataplane(sender) and "solo" in str(sender.pool_cls).lower():
        start_watcher()


@worker_ready.connect(dispatch_uid="lbadmin-generation-watcher-ready")
def watch_generation(sender=None, **_kwargs):
    if _consumes_dataplane(sender):
        start_watcher()


@worker_shutdown.connect(dispatch_uid="lbadmin-generation-watcher-stop")
def stop_watching_generation(**_kwargs):
    global _watcher
    if _watcher is not None:
        _watcher.stop()
        _watcher = None


@shared_task
def compare_live_ruleset():
    return apply.compare_live()


@worker_ready.connect
def reconcile_at_start(sender, **kwargs):
    """The dataplane worker rebuilds lbadmin's table when it starts: a reboot or a crash
    leaves the kernel with whatever it had, the database says what it should have."""
    queues = {queue.name for queue in sender.task_consumer.queues}
    if "dataplane" in queues:
        # Addresses first: the VIPs and floating IPs are placed in their subnets.
        apply_network_from_database.apply_async(queue="dataplane")
        apply_dataplane.apply_async(kwargs={"full": True}, queue="dataplane")


def overloaded_marks(counts, limits, before):
    """Servers past their maximum stay out until they fall below their minimum (or the maximum
    when no minimum is set), as ldirectord's upper and lower thresholds do.

    limits: {mark: (minimum, maximum)} for servers with a maximum."""
    overloaded = set()
    for mark, (minimum, maximum) in limits.items():
        count = counts.get(mark, 0)
        if count >= maximum or (mark in before and count >= (minimum or maximum)):
            overloaded.add(mark)
    return frozenset(overloaded)


_sampling = threading.Lock()


@shared_task(ignore_result=True)  # nobody waits for it
def sample_connections():
    """Every 2 s on the reader worker (core.queues: CAP_NET_ADMIN to read conntrack, in the
    appliance's namespace; not the dataplane worker, where an apply waited behind it): count
    open connections per (service, server) mark; ask for an apply when a server crosses its
    limits, or when a least-connection service may need new shares. One at a time (the
    reader runs tasks in threads): a sample sent while one still runs is skipped."""
    if not _sampling.acquire(blocking=False):
        return None
    try:
        return _sample_connections()
    finally:
        _sampling.release()


def _sample_connections():
    tally = conntrack.count_by_mark_and_state()  # one reading of the table for both
    counts = conntrack.open_counts(tally)
    runtime.record_connections(counts)
    runtime.record_connection_states(tally)
    limits = {rs.id: (rs.min_connections, rs.max_connections)
              for rs in RealServer.objects.filter(max_connections__gt=0)}
    before = runtime.read_overloaded()
    now = overloaded_marks(counts, limits, before)
    if now != before:
        runtime.write_overloaded(now)
    status = runtime.read_status()
    behind = status.state_for(ConfigGeneration.current()) == "applying"
    if now != before or behind or VirtualService.objects.filter(
            scheduler=VirtualService.Scheduler.WLC).exists():
        # `behind`: a change whose apply was never sent (Redis was down when it was saved).
        apply_dataplane.delay()
    return counts
