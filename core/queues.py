"""The worker queues and which task goes to which (DESIGN.md):

- dataplane: one task at a time (-c 1), in the appliance's network namespace; nft, netlink,
  conntrack. Exactly one writer of the data plane.
- checks: health checks and the HA pair's split-brain guard (ARP probes), in the appliance's
  network namespace.
- maintenance: updates, backups, restores, beat's heartbeat, and the HA pair's calls to the
  other node (pairing, replication).

The Celery app (appliance.celery), the runner's client and the status page read them here.
"""

QUEUES = ("dataplane", "checks", "maintenance")

TASK_ROUTES = {
    "network.tasks.*": {"queue": "dataplane"},
    "core.tasks.beat_heartbeat": {"queue": "maintenance"},
    "clusters.tasks.*": {"queue": "dataplane"},
    # the graphs' sampler reads nftables' counters (CAP_NET_ADMIN) in the appliance's namespace
    "reports.tasks.sample_traffic": {"queue": "dataplane"},
    # Layer 4 Current Connections: conntrack's listing (CAP_NET_ADMIN), filtered and paged there
    "reports.tasks.list_connections": {"queue": "dataplane"},
    "healthchecks.tasks.*": {"queue": "checks"},
    "maintenance.tasks.*": {"queue": "maintenance"},
    # the HA pair's split-brain guard: ARP probes (CAP_NET_RAW) in the appliance's namespace
    "ha.tasks.guard_split_brain": {"queue": "checks"},
    # the HA pair: pairing, breaking, replication (outbound HTTPS to the other node)
    "ha.tasks.*": {"queue": "maintenance"},
}
