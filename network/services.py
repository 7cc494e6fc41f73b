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

from . import guard, rules, snmpd
from .forms import InterfacesForm
from .models import NetworkConfiguration, PendingNetworkChange, SnmpSettings
from .tasks import apply_network as apply_network_task
from .tasks import describe_network_namespace, put_back_network, roll_back_unconfirmed


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

    The lock-out guard (network.guard): if the change removes `browser_address` (the
    appliance's address the browser is using), or every address of a subnet that a real
    server, a fallback server, a floating IP or a VIP lives in (network.rules), it is kept only
    if confirmed in time — else the worker puts the previous settings back by itself: returns
    the PendingNetworkChange then."""
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
            pending = hold_change(guard.NETWORK, previous, browser_address)
    signals.network_applied.send(sender=None)
    return pending


def interfaces_form(listing, data=None, changed=None):
    """Network Interface Configuration's form (IP Address Assignment) over the live
    interfaces `listing`, bound to `data` (the page's POST) — or, for lbcli and the REST API,
    which name only what changes, to what the page shows with `changed` over it:
    {interface: {"addresses": [cidr, …], "mtu": n}} (either key may be absent). A name that is
    not an interface here is the form's error."""
    configured = NetworkConfiguration.load().interfaces
    if changed is None:
        return InterfacesForm(data, interfaces=listing, configured=configured)
    shown = InterfacesForm(interfaces=listing, configured=configured)
    data = {name: "" if field.initial is None else field.initial
            for name, field in shown.fields.items()}
    for name, settings_ in changed.items():
        if "addresses" in settings_:
            data[f"addresses_{name}"] = "\n".join(settings_["addresses"])
        if "mtu" in settings_:
            data[f"mtu_{name}"] = "" if settings_["mtu"] is None else settings_["mtu"]
    form = InterfacesForm(data, interfaces=listing, configured=configured)
    for name in changed:
        if name not in shown.interface_names:
            form.add_error(None, f"“{name}” is not an interface of this appliance: "
                                 f"{', '.join(shown.interface_names)}.")
    return form


def interfaces_change(form):
    """What a valid InterfacesForm asks of do_configure_network: every interface's addresses
    and MTU (the page, lbcli and the REST API)."""
    return {"interfaces": form.configuration()}


def lockout_reasons(changes, browser_address=""):
    """Why the lock-out guard would hold `changes` (do_configure_network's rule), in words;
    [] when it would be kept at once."""
    previous = NetworkConfiguration.load().as_dict()
    config = previous | changes
    reasons = rules.describe_unconnected(
        rules.left_unconnected(previous["interfaces"], config["interfaces"], holders()))
    if browser_address and _removes(previous, config, browser_address):
        reasons.append(f"This change removes {browser_address}, the address this call reached "
                       "the appliance at.")
    return reasons


# -- the lock-out guard (network.guard) ---------------------------------------------------------

def hold_change(kind, previous, browser=""):
    """Hold a change of this kind that was just applied and saved: it is kept only if
    confirmed within NETWORK_CONFIRM_SECONDS (do_confirm_change), else the dataplane worker
    puts `previous` back (network.tasks.roll_back_unconfirmed, sent with that countdown once
    this transaction commits). Call it inside the transaction that saves the change.

    A change made while an earlier one of its kind still waits replaces it: a roll-back goes
    back to the last settings someone kept (the earlier one's finds nothing left to undo; had
    it run, it would have put back the settings of a change nobody kept)."""
    first = guard.waiting(kind).order_by("created", "id").first()
    if first is not None:
        previous = first.previous
    drop_waiting(kind)
    seconds = settings.NETWORK_CONFIRM_SECONDS
    pending = PendingNetworkChange.objects.create(
        kind=kind, token=secrets.token_urlsafe(24), previous=previous, browser=browser,
        deadline=timezone.now() + datetime.timedelta(seconds=seconds))
    token = pending.token
    transaction.on_commit(lambda: roll_back_unconfirmed.apply_async((token,),
                                                                    countdown=seconds))
    return pending


def drop_waiting(kind):
    """Forget the changes of this kind still waiting: a later one replaced them."""
    guard.waiting(kind).delete()


def do_confirm_change(token, user, browser=None):
    """Keep a held change — only if its kind lets this Browser keep it (a lockdown: from an
    address it admits; None: a browser whose addresses are not known). "kept", "too late"
    (rolled back, or no such change) or "refused"."""
    browser = browser or guard.Browser()
    with transaction.atomic():
        pending = PendingNetworkChange.objects.select_for_update().filter(token=token).first()
        if pending is None or pending.rolled_back:
            return "too late"
        kind = guard.kind_of(pending)
        if not kind.may_confirm(pending, browser):
            return "refused"
        pending.confirmed = True
        pending.save(update_fields=["confirmed"])
        where = f" from {browser.came_from}" if browser.came_from else ""
        record_audit(user, f"confirmed the {kind.noun}{where}")
    return "kept"


def reasons_held(pending):
    """Why a held network change waits for confirmation, in words: the subnets it leaves
    without an address that the configuration's servers, floating IPs or VIPs live in (none:
    it removed the browser's address)."""
    if pending is None or pending.rolled_back:
        return []
    current = NetworkConfiguration.load().interfaces
    return rules.describe_unconnected(rules.left_unconnected(
        pending.previous.get("interfaces", {}), current, holders()))


def keeps_the_browsers_address(pending, browser):
    """Whether the browser reached the appliance at an address the held network change kept
    (or at one not known: no gunicorn socket, or loopback through a forward)."""
    current = NetworkConfiguration.load().as_dict()
    return not (browser.arrived_on and _removes(pending.previous, current, browser.arrived_on))


NETWORK_CHANGE = guard.Kind(  # registered by NetworkConfig.ready
    undo=put_back_network, reasons=reasons_held, may_confirm=keeps_the_browsers_address,
    title="Network Interface Configuration", home="local:interfaces", page="local:network-confirm",
    noun="network change", short="change", previous="the previous settings",
    where="one of the new addresses",
    inside="Your browser reaches the appliance at an address the change kept.",
    outside="This change removed the address your browser is using ({arrived_on}).",
    refused="Your browser reached the appliance at {arrived_on}, an address this change "
            "removed: confirm from one of the new addresses.")


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


@transaction.atomic
def do_save_graphing(graphing, user):
    """Store Local Configuration › Graphing (GraphingSettings, validated by full_clean)."""
    graphing.pk = 1
    graphing.full_clean()
    graphing.save()
    record_change(user, f"set graphing: sample every {graphing.interval} s, real servers' "
                        f"graphs {'on' if graphing.real_servers else 'off'}")
    return graphing


def do_save_snmp(snmp, user):
    """Store SNMP Configuration (an SnmpSettings, validated by full_clean) and put it into
    effect: snmpd.conf written and snmpd (re)started, or removed and stopped. Returns "" or,
    when no supervisor took the request, why (the settings are saved all the same)."""
    with transaction.atomic():
        snmp.pk = 1
        snmp.full_clean(validate_unique=False)  # the one row, replaced: pk 1 is meant
        snmp.save()
        record_change(user, f"set SNMP: {snmpd.describe(snmp)}")
    return refresh_snmp(snmp, by=str(user))


def refresh_snmp(snmp=None, by=snmpd.BY):
    """snmpd's configuration from the stored settings (also after a hostname change: it is
    sysName). Returns "" or why snmpd could not be (re)started, in words."""
    snmp = snmp or SnmpSettings.load()
    if not snmp.enabled and not snmpd.conf_path().exists():
        return ""  # never enabled, or already off: nothing to stop
    try:
        snmpd.put_in_effect(snmp, NetworkConfiguration.load().hostname, by=by)
    except WorkerUnavailable as problem:
        return f"snmpd could not be {'restarted' if snmp.enabled else 'stopped'}: {problem}"
    return ""

