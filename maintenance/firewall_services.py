"""Actions of Maintenance › Firewall Lockdown Wizard and Firewall Script: plain functions the
views and tests call. The kernel is changed by the dataplane worker (firewall_tasks); a
setting is saved only once the kernel took it, so what the pages show is what is live.

The lockdown is not replicated to an HA peer and not in a backup (the guide's 10.1.1 lists the
firewall as local to each appliance): a backup restored on another appliance must not lock its
administrators out.
"""

from django.db import transaction
from django.utils import timezone

from core import pairing
from core.audit import record_audit
from core.workers import ask_dataplane
from network import guard
from network.services import drop_waiting, hold_change

from . import firewall
from .firewall_tasks import apply_lockdown_task, apply_script_task, put_back_lockdown
from .models import FirewallLockdown, FirewallScript


class FirewallRefused(Exception):
    """The kernel (or the script's wrapper) refused; the previous rules stay live."""


def admitted(address):
    """Whether the lockdown in force now lets a new connection from `address` in."""
    stored = FirewallLockdown.load()
    if not stored.enabled:
        return True
    return firewall.admits(firewall.parse_networks(stored.networks), address,
                           pairing.peer_address())


def do_save_lockdown(enabled, networks, user, browser=""):
    """Apply the lockdown through the dataplane worker and save it once the kernel took it.

    The lock-out guard of Local Configuration's network pages (network.guard), with their
    time (LBADMIN_NETWORK_CONFIRM_SECONDS): a lockdown that is on must be confirmed from an
    address it admits in time, or the worker puts the previous one back by itself. Returns
    the held change then (None when the lockdown was turned off). `browser`: the address the
    browser that made it came from."""
    stored = FirewallLockdown.load()
    previous = stored.as_dict()
    result = ask_dataplane(apply_lockdown_task, enabled=enabled, networks=networks)
    if not result["ok"]:
        raise FirewallRefused(result["error"])
    pending = None
    with transaction.atomic():
        stored.enabled, stored.networks = enabled, networks
        stored.save()
        shown = ", ".join(str(n) for n in firewall.parse_networks(networks)) or "none"
        record_audit(user, f"set the firewall lockdown {'on' if enabled else 'off'} "
                           f"(administration networks: {shown})")
        if enabled:
            pending = hold_change(firewall.LOCKDOWN, previous, browser)
        else:
            # Off shuts nobody out, and the roll-back of a lockdown still waiting would turn
            # one back on: the waiting one goes.
            drop_waiting(firewall.LOCKDOWN)
    return pending


def admits_the_browser(pending, browser):
    """Only a browser the held lockdown (the one in force) admits may keep it: reaching the
    appliance through it proves it does not shut out the administrator keeping it."""
    return admitted(browser.came_from)


LOCKDOWN_CHANGE = guard.Kind(  # registered by MaintenanceConfig.ready
    undo=put_back_lockdown, may_confirm=admits_the_browser,
    title="Firewall Lockdown Wizard", home="maintenance:firewall-lockdown",
    page="maintenance:firewall-lockdown-pending", noun="firewall lockdown", short="lockdown",
    previous="the previous lockdown", where="an address in the administration networks",
    inside="Your browser ({came_from}) reaches the appliance through the lockdown.",
    outside="The lockdown is live, and your browser's address {came_from} is not in its "
            "networks: this browser can no longer open new connections to the WebUI.",
    refused="Your browser's address {came_from} is not in the administration networks: "
            "confirm from an address that is.")


def do_save_script(script, user):
    """Check and apply the Firewall Script through the dataplane worker; save it only once
    the kernel took it. FirewallRefused with the reason (nft's, with the script's own line
    numbers) when not: the previous rules stay live."""
    result = ask_dataplane(apply_script_task, script=script)
    if not result["ok"]:
        raise FirewallRefused(result["error"])
    with transaction.atomic():
        stored = FirewallScript.load()
        stored.script, stored.saved_at = script, timezone.now()
        stored.save()
        lines = len(script.strip().splitlines())
        record_audit(user, f"applied the firewall script ({lines} lines)" if lines else
                     "removed the firewall script")
    return stored
