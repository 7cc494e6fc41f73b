"""The Reports' work on the dataplane worker (core.queues): it holds CAP_NET_ADMIN and runs in
the appliance's namespace, where nftables' counters and conntrack are read."""

from celery import shared_task

from clusters.dataplane import conntrack

from . import sampler


@shared_task(ignore_result=True)  # nobody waits for it
def sample_traffic():
    """Every core.graphing.INTERVAL seconds on the dataplane worker (core.queues): the graphs'
    and Traffic Rate's sample (reports.sampler)."""
    sampler.sample()


@shared_task
def list_connections(marks=None, client="", offset=0, limit=100):
    """Reports › Layer 4 Current Connections: one page of the tracked connections lbadmin
    marked, read on the dataplane worker (conntrack needs CAP_NET_ADMIN) and filtered and
    paged there — only the page crosses Redis, with the total. `marks`: None, or
    [[value, mask], …] (reports.layer4_reports.marks_for)."""
    total, rows = conntrack.list_connections(
        None if marks is None else [tuple(pair) for pair in marks], client, offset, limit)
    return {"total": total, "rows": [row.as_dict() for row in rows]}
