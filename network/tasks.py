"""Tasks of Local Configuration, run by the dataplane worker in the appliance's namespace."""

from celery import shared_task
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from core import signals
from core.audit import record_change

from . import guard, kernel, netlink
from .models import NetworkConfiguration


@shared_task
def describe_network_namespace():
    """What the dataplane worker sees: its interfaces and addresses, read through netlink.

    Proves the privileged worker acts inside the appliance's namespace (eth0/eth1 in the lab).
    """
    return netlink.list_interfaces()


@shared_task
def describe_routes():
    """Every route of the main table as the kernel has it (View Configuration)."""
    return netlink.read_all_routes()


@shared_task
def apply_network(config):
    """Apply Local Configuration (interfaces, VLANs, routes) in the appliance's namespace;
    {"ok": True} or {"ok": False, "error": the refusal in words with the kernel's after them,
    "field": the form field it came from} (previous settings restored)."""
    try:
        kernel.apply_network(config)
    except kernel.NetworkError as error:
        return {"ok": False, "error": str(error), "field": error.field}
    return {"ok": True}


@shared_task
def apply_network_from_database():
    """At worker start: the stored Local Configuration back into the kernel — after a held
    change whose time ran out while the worker was away is rolled back (resume_guard).

    At the very first start nothing is stored yet: the interfaces as the system brought them
    up become the stored configuration, so that every rule over the configuration (a gateway
    on a connected subnet, an address used twice) can be checked against it alone — by the
    WebUI, a restore or a replica — never against the kernel."""
    resume_guard(guard.NETWORK)
    stored = NetworkConfiguration.load()
    if not stored.interfaces:
        names = [i["name"] for i in netlink.list_interfaces() if i["name"] != "lo"]
        stored.interfaces = netlink.read_interfaces(names)
        stored.save(update_fields=["interfaces"])
        record_change("lbadmin", "recorded the interfaces as the system configured them "
                                 f"({', '.join(sorted(stored.interfaces)) or 'none'})")
    return apply_network(stored.as_dict())


@shared_task
def write_resolver_files(hostname, dns):
    kernel.write_resolver_files(settings.ETC_DIR, hostname, dns)


@shared_task
def roll_back_unconfirmed(token):
    """The lock-out guard (network.guard), for every kind of held change: one nobody
    confirmed in time is undone by its kind — "kept", "rolled back" or why it could not be."""
    return guard.roll_back(token)


def resume_guard(kind):
    """When the dataplane worker starts, before it applies this kind's settings from the
    database: a held change whose time ran out while the worker was away is rolled back now,
    and one still within its time has its roll-back sent again for its deadline — the one sent
    when it was held is lost if Redis restarted, and a killed worker's is redelivered only an
    hour later (Redis' visibility timeout). A change rolled back twice is undone once."""
    for pending in guard.waiting(kind):
        if pending.deadline <= timezone.now():
            guard.roll_back(pending.token)
        else:
            roll_back_unconfirmed.apply_async((pending.token,), eta=pending.deadline)


def put_back_network(previous):
    """The network kind's undo (network.guard.Kind): the settings before a held change back
    in the kernel and the database, the data plane's addresses placed again once committed."""
    try:
        kernel.apply_network(previous)
    except kernel.NetworkError as error:
        raise guard.UndoFailed(str(error)) from None
    stored = NetworkConfiguration.load()
    for key, value in previous.items():
        setattr(stored, key, value)
    stored.save()
    record_change("lbadmin", "rolled back a network change nobody confirmed in time")
    transaction.on_commit(lambda: signals.network_applied.send(sender=None))
