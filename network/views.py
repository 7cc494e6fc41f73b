"""Local Configuration pages: Network Interface Configuration, Routing, Hostname & DNS; and
the lock-out guard's page, which every kind of held change shares (network.guard)."""

import datetime
import ipaddress

from django.contrib import messages
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from core.workers import WorkerUnavailable, ask_dataplane

from . import guard, services
from .forms import HostnameDnsForm, RoutingForm, VlanForm, connected_networks
from .models import NetworkConfiguration, PendingNetworkChange
from .services import live_interfaces
from .tasks import write_resolver_files


def browser_address(request):
    """The appliance's address the browser's connection really arrived on — the local end of
    gunicorn's socket (the lock-out guard must not trust the Host header, which the client
    writes) — or "" when it is not known (no gunicorn socket: the guard then decides by the
    subnets alone)."""
    sock = request.META.get("gunicorn.socket")
    try:
        local = sock.getsockname()[0] if sock is not None else ""
        address = ipaddress.ip_address(str(local).split("%")[0])
    except (OSError, AttributeError, TypeError, IndexError, ValueError):
        return ""
    mapped = getattr(address, "ipv4_mapped", None)
    return str(mapped or address)


def _configure(request, form, changes, success_url):
    """Apply through the worker and return the response to send; on the kernel's refusal or a
    dead worker, the reason becomes a form error — next to the field the refused value came
    from — and None is returned."""
    try:
        pending = services.do_configure_network(changes, request.user, browser_address(request))
    except services.NetworkRefused as refused:
        field = refused.field if refused.field in form.fields else None
        form.add_error(field, f"{refused} The previous settings stay.")
        return None
    except WorkerUnavailable as problem:
        form.add_error(None, f"{problem} Nothing was changed.")
        return None
    if pending:
        return redirect("local:network-confirm", token=pending.token)
    messages.success(request, "Applied.")
    return redirect(success_url)


def interfaces(request):
    listing, error = live_interfaces()
    stored = NetworkConfiguration.load()
    context = {"page_title": "Network Interface Configuration", "error": error,
               "interfaces": listing or [], "vlans": stored.vlans}
    if listing is None:
        return render(request, "network/interfaces.html", context)
    form = services.interfaces_form(listing, request.POST if "configure" in request.POST
                                    else None)
    vlan_form = VlanForm(request.POST if "add_vlan" in request.POST else None,
                         interfaces=listing, vlans=stored.vlans)
    if request.method == "POST" and "configure" in request.POST and form.is_valid():
        response = _configure(request, form, services.interfaces_change(form),
                              "local:interfaces")
        if response:
            return response
    if request.method == "POST" and "add_vlan" in request.POST and vlan_form.is_valid():
        vlan = [vlan_form.cleaned_data["parent"], vlan_form.cleaned_data["vlan_id"]]
        response = _configure(request, vlan_form, {"vlans": [*stored.vlans, vlan]},
                              "local:interfaces")
        if response:
            return response
    return render(request, "network/interfaces.html",
                  context | {"form": form, "vlan_form": vlan_form})


@require_POST
def remove_vlan(request):
    """Remove one of the VLANs lbadmin made (and its stored settings); any other name — a
    physical interface, a VLAN lbadmin did not make, nothing at all — changes nothing."""
    stored = NetworkConfiguration.load()
    name = request.POST.get("vlan", "").strip()
    ours = {f"{parent}.{vid}" for parent, vid in stored.vlans}
    if name not in ours:
        shown = name or "(no name)"
        messages.error(request, f"{shown} is not a VLAN lbadmin made: only those listed under "
                                "“VLANs made by lbadmin” can be removed here. Nothing was "
                                "changed.")
        return redirect("local:interfaces")
    vlans = [v for v in stored.vlans if f"{v[0]}.{v[1]}" != name]
    interfaces = {n: s for n, s in stored.interfaces.items() if n != name}
    try:
        pending = services.do_configure_network({"vlans": vlans, "interfaces": interfaces},
                                                request.user, browser_address(request))
    except (services.NetworkRefused, WorkerUnavailable) as problem:
        messages.error(request, f"{name} could not be removed: {problem}")
    else:
        if pending:
            return redirect("local:network-confirm", token=pending.token)
        messages.success(request, f"VLAN {name} removed.")
    return redirect("local:interfaces")


def guard_browser(request):
    """This browser as the lock-out guard judges it: the address it came from and the
    appliance's address it arrived on."""
    return guard.Browser(came_from=request.META.get("REMOTE_ADDR", ""),
                         arrived_on=browser_address(request))


OVERDUE = datetime.timedelta(seconds=10)  # past the deadline, a roll-back should have run


def pending_change(request, token, kind):
    """The lock-out guard's page for a held change of `kind` (its URL says which: the page
    stays under the menu the change was made on): what waits, until when, and whether this
    browser may keep it. A POST keeps it, if this browser may."""
    held = guard.KINDS[kind]
    pending = PendingNetworkChange.objects.filter(token=token, kind=kind).first()
    browser = guard_browser(request)
    if request.method == "POST" and pending:
        outcome = services.do_confirm_change(token, request.user, browser)
        if outcome == "kept":
            messages.success(request, f"The {held.noun} is confirmed and kept.")
            return redirect(held.home)
        if outcome == "refused":
            messages.error(request, held.refused.format(**browser._asdict()))
        else:
            messages.error(request, f"Too late: the {held.short} was rolled back.")
        return redirect(held.page, token=token)
    return render(request, "network/network_confirm.html", {
        "page_title": held.title, "kind": held, "pending": pending,
        "may_confirm": pending is not None and held.may_confirm(pending, browser),
        "inside": held.inside.format(**browser._asdict()),
        "outside": held.outside.format(**browser._asdict()),
        "reasons": held.reasons(pending) if pending else [],
        # the time is up and the worker has not rolled it back (yet): say so
        "overdue": pending is not None and timezone.now() > pending.deadline + OVERDUE})


def routing(request):
    listing, error = live_interfaces()
    stored = NetworkConfiguration.load()
    initial = {"gateway4": stored.gateway4, "gateway6": stored.gateway6,
               "routes": "\n".join(f"{r['destination']} {r['gateway']}" for r in stored.routes)}
    form = RoutingForm(request.POST or None, initial=initial,
                       # the configuration's subnets, never the kernel's (as a restore)
                       networks=connected_networks([], stored.interfaces))
    if request.method == "POST" and listing is not None and form.is_valid():
        response = _configure(request, form, {k: form.cleaned_data[k]
                                              for k in ("gateway4", "gateway6", "routes")},
                              "local:routing")
        if response:
            return response
    return render(request, "network/routing.html", {
        "page_title": "Routing", "form": form, "error": error})


def hostname_dns(request):
    stored = NetworkConfiguration.load()
    dns = (stored.dns + ["", "", ""])[:3]
    form = HostnameDnsForm(request.POST or None, initial={
        "hostname": stored.hostname, "dns1": dns[0], "dns2": dns[1], "dns3": dns[2]})
    if request.method == "POST" and form.is_valid():
        stored = services.do_save_hostname_dns(
            form.cleaned_data["hostname"],
            [form.cleaned_data[f] for f in ("dns1", "dns2", "dns3") if form.cleaned_data[f]],
            request.user)
        try:
            ask_dataplane(write_resolver_files, hostname=stored.hostname, dns=stored.dns)
        except WorkerUnavailable as problem:
            messages.error(request, f"Saved, but not written yet: {problem}")
        else:
            messages.success(request, "Hostname and DNS saved and written.")
        if problem := services.refresh_snmp():  # the hostname is SNMP's sysName
            messages.error(request, f"SNMP's sysName is not updated yet: {problem}")
        return redirect("local:hostname-dns")
    return render(request, "network/hostname_dns.html", {
        "page_title": "Hostname & DNS", "form": form})
