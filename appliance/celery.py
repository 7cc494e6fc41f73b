"""The Celery app. Its queues and routes are core.queues'; tasks take ids and reload, and
actions send them with core.workers.send_on_commit so nothing runs for a transaction that
rolled back.
"""

import os

from celery import Celery
from celery.schedules import crontab

from core.queues import TASK_ROUTES

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "appliance.settings")

app = Celery("lbadmin", task_cls="celery.contrib.django.task:DjangoTask")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.update(
    task_default_queue="maintenance",
    task_routes=TASK_ROUTES,
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    worker_prefetch_multiplier=1,
    broker_connection_retry_on_startup=True,
    result_expires=3600,
    beat_schedule={
        "beat-heartbeat": {"task": "core.tasks.beat_heartbeat", "schedule": 10.0},
        # live connection counts: Conns on System Overview, maximum connections, least-conn
        "sample-connections": {"task": "clusters.tasks.sample_connections", "schedule": 2.0,
                               "options": {"expires": 2.0}},
        # traffic counters and system figures for Reports › Graphs, Traffic Rate and /metrics
        "sample-traffic": {"task": "reports.tasks.sample_traffic", "schedule": 5.0,
                           "options": {"expires": 5.0}},
        # alerts queued by the checks, the applies, the supervisor (core.alerts): email,
        # webhook, SNMP trap, from the maintenance worker (the one making outbound calls)
        "deliver-alerts": {"task": "maintenance.tasks.deliver_alerts", "schedule": 2.0,
                           "options": {"expires": 2.0}},
        "scheduled-backup": {"task": "maintenance.tasks.scheduled_backup",
                             "schedule": crontab(hour=3, minute=17)},
        # Online Update: does the update server offer a newer release? (off: Physical –
        # Advanced Configuration)
        "check-for-update": {"task": "maintenance.tasks.check_for_update",
                             "schedule": crontab(hour=4, minute=41)},
        # HA pair: re-send what the Secondary has not acknowledged; hand the Secondary's
        # Halt/Drain/Online to the Primary (does nothing on a standalone appliance)
        "ha-catch-up": {"task": "ha.tasks.catch_up", "schedule": 2.0,
                        "options": {"expires": 2.0}},
        # HA pair: split-brain guard (ha.split_brain: ARP probes on the checks worker; does
        # nothing on a standalone appliance)
        "ha-split-brain-guard": {"task": "ha.tasks.guard_split_brain", "schedule": 1.0,
                                 "options": {"expires": 1.0}},
        # health checks: takes the due ones and sends each to the checks worker
        "dispatch-checks": {"task": "healthchecks.tasks.dispatch", "schedule": 1.0,
                            "options": {"expires": 1.0}},
    },
)
app.autodiscover_tasks()

