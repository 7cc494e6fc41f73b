import time

from celery import shared_task
from celery.signals import worker_ready, worker_shutdown

from . import runtime


@shared_task(ignore_result=True)  # nobody waits for it
def beat_heartbeat():
    """Beat answers no ping, so it sends this every 10 s and System Overview reads its age."""
    runtime.record_beat_heartbeat(time.time())


# Every worker writes its own heartbeat (core.runtime.WorkerHeartbeat) from the moment it
# consumes until it stops; System Overview reads them. Connected here because the Celery app
# autodiscovers this module in every worker before the worker is ready.

@worker_ready.connect(dispatch_uid="lbadmin-worker-heartbeat-start")
def start_worker_heartbeat(sender=None, **_kwargs):
    queues = sorted(sender.app.amqp.queues.consume_from)
    runtime.start_worker_heartbeat(sender.hostname, queues)


@worker_shutdown.connect(dispatch_uid="lbadmin-worker-heartbeat-stop")
def stop_worker_heartbeat(sender=None, **_kwargs):
    runtime.stop_worker_heartbeat()
