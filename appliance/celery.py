"""The Celery app. Queues (DESIGN.md):

- dataplane: one task at a time (-c 1), in the appliance's network namespace; nft, netlink,
  conntrack. Exactly one writer of the data plane.
- checks: health checks, in the appliance's network namespace.
- maintenance: updates, backups, restores, and beat's heartbeat.

Tasks take ids and reload; views enqueue them with `task.delay_on_commit(...)` so nothing runs
for a transaction that rolled back.
"""

import os

from celery import Celery
from celery.schedules import crontab

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "appliance.settings")

QUEUES = ("dataplane", "checks", "maintenance")

app = Celery("lbadmin", task_cls="celery.contrib.django.task:DjangoTask")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.update(
    task_default_queue="maintenance",
    task_routes={
        "appliance.tasks.describe_network_namespace": {"queue": "dataplane"},
        "appliance.tasks.apply_network": {"queue": "dataplane"},
        "appliance.tasks.apply_network_from_database": {"queue": "dataplane"},
        "appliance.tasks.write_resolver_files": {"queue": "dataplane"},
        "appliance.tasks.roll_back_unconfirmed": {"queue": "dataplane"},
        "appliance.tasks.beat_heartbeat": {"queue": "maintenance"},
        "clusters.tasks.sample_connections": {"queue": "checks"},
        "clusters.tasks.*": {"queue": "dataplane"},
        "healthchecks.tasks.*": {"queue": "checks"},
        "maintenance.tasks.*": {"queue": "maintenance"},
    },
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    worker_prefetch_multiplier=1,
    broker_connection_retry_on_startup=True,
    result_expires=3600,
    beat_schedule={
        "beat-heartbeat": {"task": "appliance.tasks.beat_heartbeat", "schedule": 10.0},
        # live connection counts: Conns on System Overview, maximum connections, least-conn
        "sample-connections": {"task": "clusters.tasks.sample_connections", "schedule": 2.0,
                               "options": {"expires": 2.0}},
        "scheduled-backup": {"task": "maintenance.tasks.scheduled_backup",
                             "schedule": crontab(hour=3, minute=17)},
        # Online Update: does the update server offer a newer release? (off: Physical –
        # Advanced Configuration)
        "check-for-update": {"task": "maintenance.tasks.check_for_update",
                             "schedule": crontab(hour=4, minute=41)},
        # health checks: takes the due ones and sends each to the checks worker
        "dispatch-checks": {"task": "healthchecks.tasks.dispatch", "schedule": 1.0,
                            "options": {"expires": 1.0}},
    },
)
app.autodiscover_tasks()


def send_on_commit(task, *args, **kwargs):
    """Send `task` once the current transaction commits; nothing for a rolled-back one.

    Robust: if Redis is down the change is still saved (the WebUI shows Redis down and the
    change as not yet applied) and the sampler re-sends the apply once Redis is back.
    """
    from django.db import transaction

    transaction.on_commit(lambda: task.apply_async(args, kwargs), robust=True)
