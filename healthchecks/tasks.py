"""The check engine on Celery.

Beat sends `dispatch` every second. It takes the checks due within the next LOOKAHEAD seconds
from a Redis sorted set (score = when due) and sends each as its own `run_check` task with its
due time as the ETA, so it starts on time rather than at the next tick; the checks worker runs
them in a thread pool: a slow check holds one thread, never the others. The next due time is
the previous one plus the interval — not "now plus the interval" — so checks keep their
schedule without drifting; a check missed while the worker was down is run once, then the
schedule continues on its phase. The set lives in Redis, so a restarted worker resumes.
"""

import datetime
import json
import logging
import time

from celery import shared_task
from django.db import IntegrityError, transaction

from clusters import alerts
from clusters.models import RealServer, VirtualService
from clusters.tasks import apply_dataplane
from core import health as state
from core.runtime import redis_client

from . import engine
from .models import HealthEvent, ServerHealth

log = logging.getLogger("lbadmin.healthchecks")
DUE = "lbadmin:checks:due"
LOCK = "lbadmin:checks:dispatch-lock"
LATENESS = "lbadmin:checks:lateness"
LAST_TRANSITION = "lbadmin:health:last-transition"
PHASE = 0.6180339887  # spreads first checks over the interval instead of all at once
LOOKAHEAD = 1.5  # seconds: beat's 1 s tick plus slack


def checked_servers():
    """{real server id: interval} of every real server whose service runs checks."""
    return dict(RealServer.objects.filter(
        service__check_type__in=VirtualService.CHECKED).values_list(
        "id", "service__check_interval"))


@shared_task(ignore_result=True)  # nobody waits for it
def dispatch():
    client = redis_client()
    if not client.set(LOCK, "1", nx=True, ex=10):
        return 0  # another dispatch is running
    try:
        now = time.time()
        wanted = checked_servers()
        scheduled = {int(m): score for m, score in client.zrange(DUE, 0, -1, withscores=True)}
        pipe = client.pipeline()
        gone = scheduled.keys() - wanted.keys()
        if gone:
            pipe.zrem(DUE, *gone)
        for server_id in wanted.keys() - scheduled.keys():
            interval = wanted[server_id]
            first = now + min((server_id * PHASE) % interval, 2.0 if interval > 60 else interval)
            pipe.zadd(DUE, {server_id: first})
        sent = 0
        for server_id, due in scheduled.items():
            if server_id not in wanted or due > now + LOOKAHEAD:
                continue
            interval = wanted[server_id]
            eta = datetime.datetime.fromtimestamp(due, datetime.UTC) if due > now else None
            run_check.apply_async((server_id, due), eta=eta,
                                  expires=datetime.datetime.fromtimestamp(due + interval,
                                                                          datetime.UTC))
            following = due + interval
            while following <= now:  # missed while nothing dispatched: keep the phase
                following += interval
            pipe.zadd(DUE, {server_id: following})
            sent += 1
        pipe.execute()
        return sent
    finally:
        client.delete(LOCK)


def target_for(server):
    service = server.service
    ports = [low for low, _high in service.port_ranges]
    if service.check_port:
        ports = [service.check_port]
    elif server.port:
        ports = [server.port]
    if service.check_type in (VirtualService.CheckType.HTTP, VirtualService.CheckType.HTTPS):
        ports = ports[:1]
    return engine.Target(
        check_type=service.check_type, vip=service.vip, virtual_port=ports[0] if ports else 0,
        ports=tuple(ports), ip=server.ip, real_port=server.port, timeout=service.check_timeout,
        script=service.check_script.script if service.check_script else "",
        request=service.check_request or "/", host=service.check_host,
        expect=service.check_expect)


def check_server(server_id, due=None):
    """Run one check of one real server and move its state machine; returns the transition.

    Called by the run_check task; tests call it directly."""
    started = time.time()
    server = RealServer.objects.select_related("service", "service__check_script").filter(
        pk=server_id).first()
    if server is None or server.service.check_type not in VirtualService.CHECKED:
        return None
    if due is not None:
        client = redis_client()
        client.lpush(LATENESS, f"{started - due:.4f}")
        client.ltrim(LATENESS, 0, 9999)
    target = target_for(server)
    result = engine.run(target)
    health = state.load(server_id)
    state.rebase(health, target.fingerprint())  # a new check counts afresh; the state stays
    transition = state.step(health, result.ok, server.service.failure_count)
    health.checked_at, health.message = time.time(), result.message
    health.output, health.ports = result.output[:4096], result.ports
    state.save(server_id, health)
    if transition:
        record_transition(server, transition, result, health)
    return transition


def record_transition(server, transition, result, health):
    service = server.service
    where = f"{server.label} ({server.ip}) of {service.label}"
    if transition == "down":
        message = (f"down after {health.fails} failed checks in a row: {result.message}")
    else:
        message = f"up again: {result.message}"
    log.warning("%s %s", where, message)
    redis_client().set(LAST_TRANSITION, json.dumps(
        {"server": server.id, "event": transition, "at": time.time()}))
    try:
        with transaction.atomic():
            HealthEvent.objects.create(real_server_id=server.id, where=where[:200],
                                       event=transition, message=message[:500],
                                       output=result.output[:16384])
            # What Redis forgets on a restart: core.health brings it back from here.
            ServerHealth.objects.update_or_create(real_server_id=server.id, defaults={
                "state": transition, "changed_at": health.checked_at,
                "fingerprint": health.fingerprint, "message": result.message[:500]})
    except IntegrityError:
        log.info("%s was deleted during its check: nothing to keep", where)
    apply_dataplane.delay()
    # after the state is saved: the alert says whether the fallback server took over
    alerts.raise_server_transition(server, transition, result.message, health.fails)


@shared_task(ignore_result=True)  # nobody waits for it
def run_check(server_id, due=None):
    return check_server(server_id, due)
