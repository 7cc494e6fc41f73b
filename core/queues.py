"""The worker queues and which task goes to which (DESIGN.md):

- dataplane: one task at a time (-c 1), in the appliance's network namespace; nft, netlink,
  conntrack. Exactly one writer of the data plane.
- reader: the read-only kernel reads (CAP_NET_ADMIN, in the appliance's namespace): the
  connection sampler (conntrack, every 2 s), the traffic sampler (nftables' counters, every
  5 s) and Current Connections' listing. Not on the dataplane worker, which does one task at
  a time: an apply waited there behind a sampler (0.6 s at 100,000 connections) and a page
  behind both. The reader runs its tasks in threads, so a page never waits behind a sample.
- checks: health checks and the HA pair's split-brain guard (ARP probes), in the appliance's
  network namespace.
- maintenance: updates, backups, restores, beat's heartbeat, and the HA pair's calls to the
  other node (pairing, replication).

The Celery app (appliance.celery), the runner's client and the status page read them here.
"""

QUEUES = ("dataplane", "reader", "checks", "maintenance")

TASK_ROUTES = {
    "network.tasks.*": {"queue": "dataplane"},
    "core.tasks.beat_heartbeat": {"queue": "maintenance"},
    # live connection counts: conntrack's whole table every 2 s (CAP_NET_ADMIN)
    "clusters.tasks.sample_connections": {"queue": "reader"},
    "clusters.tasks.*": {"queue": "dataplane"},
    # the graphs' sampler reads nftables' counters (CAP_NET_ADMIN) in the appliance's namespace
    "reports.tasks.sample_traffic": {"queue": "reader"},
    # Layer 4 Current Connections: conntrack's listing (CAP_NET_ADMIN), filtered and paged there
    "reports.tasks.list_connections": {"queue": "reader"},
    "healthchecks.tasks.*": {"queue": "checks"},
    "maintenance.tasks.*": {"queue": "maintenance"},
    # Firewall Lockdown and Firewall Script: nftables (CAP_NET_ADMIN), the data plane's writer
    "maintenance.firewall_tasks.*": {"queue": "dataplane"},
    # the HA pair's split-brain guard: ARP probes (CAP_NET_RAW) in the appliance's namespace
    "ha.tasks.guard_split_brain": {"queue": "checks"},
    # the HA pair: pairing, breaking, replication (outbound HTTPS to the other node)
    "ha.tasks.*": {"queue": "maintenance"},
}
