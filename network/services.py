"""Actions of Local Configuration: plain functions that views, restore and tests call."""

import datetime
import secrets

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from core import signals
from core.audit import record_audit, record_change
from core.configuration import holders
from core.workers import WorkerUnavailable, ask_dataplane

from . import rules
from .models import NetworkConfiguration, PendingNetworkChange
from .tasks import apply_network as apply_network_task
from .tasks import describe_network_namespace, roll_back_unconfirmed


def live_interfaces():
    """(interfaces, error): the appliance's interfaces as the dataplane worker reads them."""
    try:
        return ask_dataplane(describe_network_namespace), ""
    except WorkerUnavailable as problem:
        return None, f"{problem} The interfaces cannot be read or changed until it answers."


class NetworkRefused(Exception):
    """The kernel refused a network change; the previous settings stay (in it and here).
    The message says what was refused in words, the kernel's after them; `field` is the form
    field the refused value came from ("" if none)."""

    def __init__(self, message, field=""):
        super().__init__(message)
        self.field = field


def do_configure_network(changes, user, browser_address=""):
    """Apply a Local Configuration change through the dataplane worker, and save it only once
    the kernel took it. `changes` replaces keys of the stored configuration.

    The lock-out guard: if the change removes `browser_address` (the address the browser is
    using), or every address of a subnet that a real server, a fallback server, a floating IP
    or a VIP lives in (network.rules), it is kept only if confirmed in time — else the worker
    puts the previous settings back by itself: returns the PendingNetworkChange then."""
    stored = NetworkConfiguration.load()
    previous = stored.as_dict()
    config = previous | changes
    result = ask_dataplane(apply_network_task, config=config)
    if not result["ok"]:
        raise NetworkRefused(result["error"], result.get("field") or "")
    pending = None
    with transaction.atomic():
        for key, value in changes.items():
            setattr(stored, key, value)
        stored.save()
        record_change(user, f"configured the network: {', '.join(sorted(changes))}")
        cut = rules.left_unconnected(previous["interfaces"], config["interfaces"], holders())
        if cut or (browser_address and _removes(previous, config, browser_address)):
            pending = PendingNetworkChange.objects.create(
                token=secrets.token_urlsafe(24), previous=previous,
                deadline=timezone.now() + datetime.timedelta(
                    seconds=settings.NETWORK_CONFIRM_SECONDS))
            token = pending.token
            transaction.on_commit(lambda: roll_back_unconfirmed.apply_async(
                (token,), countdown=settings.NETWORK_CONFIRM_SECONDS))
    signals.network_applied.send(sender=None)
    return pending


def reasons_held(pending):
    """Why `pending` waits for confirmation, in words: the subnets it leaves without an
    address that the configuration's servers, floating IPs or VIPs live in (none: it removed
    the browser's address)."""
    if pending is None or pending.rolled_back:
        return []
    current = NetworkConfiguration.load().interfaces
    return rules.describe_unconnected(rules.left_unconnected(
        pending.previous.get("interfaces", {}), current, holders()))


def _addresses(config):
    return {cidr.split("/")[0] for settings in config["interfaces"].values()
            for cidr in settings.get("addresses", [])}


def _removes(previous, config, address):
    return address in _addresses(previous) and address not in _addresses(config)


@transaction.atomic
def do_save_hostname_dns(hostname, dns, user):
    stored = NetworkConfiguration.load()
    stored.hostname, stored.dns = hostname, list(dns)
    stored.save()
    record_change(user, f"set hostname {stored.hostname} and DNS "
                        f"{', '.join(stored.dns) or 'none'}")
    return stored


def do_confirm_network_change(token, user):
    with transaction.atomic():
        pending = PendingNetworkChange.objects.select_for_update().filter(token=token).first()
        if pending is None or pending.rolled_back:
            return False
        pending.confirmed = True
        pending.save()
        record_audit(user, "confirmed the network change from the new address")
    return True
