"""The worker queues and which task goes to which (DESIGN.md):

- dataplane: one task at a time (-c 1), in the appliance's network namespace; nft, netlink,
  conntrack. Exactly one writer of the data plane.
- checks: health checks, in the appliance's network namespace.
- maintenance: updates, backups, restores, and beat's heartbeat.

The Celery app (appliance.celery), the runner's client and the status page read them here.
"""

QUEUES = ("dataplane", "checks", "maintenance")

TASK_ROUTES = {
    "network.tasks.*": {"queue": "dataplane"},
    "core.tasks.beat_heartbeat": {"queue": "maintenance"},
    "clusters.tasks.*": {"queue": "dataplane"},
    "healthchecks.tasks.*": {"queue": "checks"},
    "maintenance.tasks.*": {"queue": "maintenance"},
}
