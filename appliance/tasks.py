import time

from celery import shared_task

from . import netlink, runtime


@shared_task
def describe_network_namespace():
    """What the dataplane worker sees: its interfaces and addresses, read through netlink.

    Proves the privileged worker acts inside the appliance's namespace (eth0/eth1 in the lab).
    """
    return netlink.list_interfaces()


@shared_task
def beat_heartbeat():
    """Beat answers no ping, so it sends this every 10 s and System Overview reads its age."""
    runtime.record_beat_heartbeat(time.time())
