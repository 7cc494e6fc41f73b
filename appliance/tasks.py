import time

from celery import shared_task

from . import netlink, runtime


@shared_task
def describe_network_namespace():
    """What the dataplane worker sees: its interfaces and addresses, read through netlink.

    Proves the privileged worker acts inside the appliance's namespace (eth0/eth1 in the lab).
    """
    return netlink.list_interfaces()


@shared_task(ignore_result=True)  # nobody waits for it
def beat_heartbeat():
    """Beat answers no ping, so it sends this every 10 s and System Overview reads its age."""
    runtime.record_beat_heartbeat(time.time())


@shared_task
def apply_network(config):
    """Apply Local Configuration (interfaces, VLANs, routes) in the appliance's namespace;
    {"ok": True} or {"ok": False, "error": the kernel's reason} (previous settings restored)."""
    from .network import NetworkError
    from .network import apply_network as apply

    try:
        apply(config)
    except NetworkError as error:
        return {"ok": False, "error": str(error)}
    return {"ok": True}


@shared_task
def apply_network_from_database():
    """At worker start: the stored Local Configuration back into the kernel."""
    from .models import NetworkConfiguration

    return apply_network(NetworkConfiguration.load().as_dict())


@shared_task
def write_resolver_files(hostname, dns):
    from django.conf import settings

    from .network import write_resolver_files as write

    write(settings.ETC_DIR, hostname, dns)


@shared_task
def roll_back_unconfirmed(token):
    """The lock-out guard: a change nobody confirmed from the new address is undone."""
    from . import services

    return services.do_roll_back_unconfirmed(token)
