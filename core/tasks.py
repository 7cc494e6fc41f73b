import time

from celery import shared_task

from . import runtime


@shared_task(ignore_result=True)  # nobody waits for it
def beat_heartbeat():
    """Beat answers no ping, so it sends this every 10 s and System Overview reads its age."""
    runtime.record_beat_heartbeat(time.time())
