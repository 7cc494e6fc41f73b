"""Tasks of the data plane. They take no model instances: they reload what they need."""

from celery import shared_task
from celery.signals import worker_ready

from network.tasks import apply_network_from_database

from . import runtime
from .dataplane import apply, conntrack
from .models import ConfigGeneration, RealServer, VirtualService


@shared_task(ignore_result=True)  # nobody waits for it
def apply_dataplane(full=False):
    return apply.apply_dataplane(full=full)


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


@shared_task(ignore_result=True)  # nobody waits for it
def sample_connections():
    """Every 2 s on the checks worker (in the appliance's namespace): count open connections
    per (service, server) mark; re-apply when a server crosses its limits, or when a
    least-connection service may need new shares."""
    counts = conntrack.count_by_mark()
    runtime.record_connections(counts)
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
