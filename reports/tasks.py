"""The Reports' work on the reader worker (core.queues): it holds CAP_NET_ADMIN and runs in
the appliance's namespace, where nftables' counters and conntrack are read; its tasks run in
threads (a page is never behind a sample)."""

import contextlib
import threading
import time

import redis
from celery import shared_task

from clusters import runtime
from clusters.dataplane import conntrack

from . import sampler

_sampling = threading.Lock()
# The connection sampler counts every 2 s (clusters.tasks): a count older than this is not
# used, the dump is counted instead.
SAMPLED_RECENTLY = 10.0


@shared_task(ignore_result=True)  # nobody waits for it
def sample_traffic():
    """Sent by beat every core.graphing.BEAT_EVERY seconds to the reader worker
    (core.queues): the graphs' and Traffic Rate's sample (reports.sampler), when Local
    Configuration › Graphing's interval is due. One at a time: the reader runs tasks in
    threads, and a sample takes its rates from this process's one before (one sent while
    another still runs is skipped)."""
    if not _sampling.acquire(blocking=False):
        return
    try:
        sampler.sample_if_due()
    finally:
        _sampling.release()


@shared_task
def list_connections(marks=None, client="", offset=0, limit=100):
    """Reports › Layer 4 Current Connections: one page of the tracked connections lbadmin
    marked, read on the reader worker (a conntrack dump needs CAP_NET_ADMIN) and filtered and
    paged there — only the page crosses Redis, with the total. `marks`: None, or
    [[value, mask], …] (reports.layer4_reports.marks_for).

    Without a client: the total is the connection sampler's count when it is recent
    (conntrack.list_connections, `sampled`), and `counted_at` says when it was taken."""
    sampled_at, sampled = 0.0, None
    if not client:
        with contextlib.suppress(redis.RedisError, OSError, ValueError):
            sampled_at, states = runtime.read_connection_states()
            if time.time() - sampled_at < SAMPLED_RECENTLY:
                sampled = {mark: tally["active"] + tally["inactive"]
                           for mark, tally in states.items()}
    total, rows = conntrack.list_connections(
        None if marks is None else [tuple(pair) for pair in marks], client, offset, limit,
        sampled)
    return {"total": total, "rows": [row.as_dict() for row in rows],
            "counted_at": sampled_at if sampled is not None else None}
