"""Maintenance › Firewall Lockdown Wizard and Firewall Script. A held lockdown's page is the
lock-out guard's, which network changes share (network.views.pending_change)."""

import ipaddress

from django.conf import settings
from django.contrib import messages
from django.shortcuts import redirect, render

from core import pairing
from core.workers import WorkerUnavailable, ask_dataplane

from . import firewall_services as services
from .firewall_forms import FirewallScriptForm, LockdownForm
from .firewall_tasks import live_tables_task
from .models import FirewallLockdown, FirewallScript


def browser_address(request):
    """The address the appliance sees this browser come from: the one the lockdown judges."""
    return request.META.get("REMOTE_ADDR", "")


def _is_loopback(address):
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


def _live_tables():
    """(tables, error): the firewall's tables as the dataplane worker lists them."""
    try:
        return ask_dataplane(live_tables_task), ""
    except WorkerUnavailable as problem:
        return None, f"{problem} What is live cannot be shown until it answers."


def firewall_lockdown(request):
    browser = browser_address(request)
    stored = FirewallLockdown.load()
    initial = {}
    if not stored.networks and browser and not _is_loopback(browser):
        initial["networks"] = browser  # the wizard offers the browser's own address
    form = LockdownForm(request.POST or None, instance=stored, initial=initial,
                        browser=browser, peer=pairing.peer_address())
    if request.method == "POST" and form.is_valid():
        try:
            pending = services.do_save_lockdown(form.cleaned_data["enabled"],
                                                form.cleaned_data["networks"], request.user,
                                                browser)
        except (services.FirewallRefused, WorkerUnavailable) as problem:
            form.add_error(None, f"{problem} The previous lockdown stays.")
        else:
            if pending:
                return redirect("maintenance:firewall-lockdown-pending", token=pending.token)
            messages.success(request, "The firewall lockdown is off.")
            return redirect("maintenance:firewall-lockdown")
    tables, error = _live_tables()
    if tables is not None and stored.enabled and not tables["lockdown"]:
        error = ("The saved lockdown is not live: the dataplane worker could not apply it "
                 "(see Logs › System). Save it again.")
    return render(request, "maintenance/firewall_lockdown.html", {
        "page_title": "Firewall Lockdown Wizard", "form": form, "browser": browser,
        "browser_is_loopback": _is_loopback(browser), "peer": pairing.peer_address(),
        "live": (tables or {}).get("lockdown"), "live_error": error,
        "confirm_seconds": settings.NETWORK_CONFIRM_SECONDS})


def firewall_script(request):
    stored = FirewallScript.load()
    form = FirewallScriptForm(request.POST or None, instance=stored)
    if request.method == "POST" and form.is_valid():
        try:
            services.do_save_script(form.cleaned_data["script"], request.user)
        except services.FirewallRefused as refused:
            form.add_error("script", f"Not applied: {refused} The previous rules stay live.")
        except WorkerUnavailable as problem:
            form.add_error(None, f"{problem} Nothing was changed.")
        else:
            messages.success(request, "The firewall script is applied.")
            return redirect("maintenance:firewall-script")
    tables, error = _live_tables()
    if tables is not None and stored.script.strip() and not tables["script"]:
        error = ("The saved script is not live: the dataplane worker could not apply it "
                 "(see Logs › System). Save it again.")
    return render(request, "maintenance/firewall_script.html", {
        "page_title": "Firewall Script", "form": form, "saved_at": stored.saved_at,
        "live": (tables or {}).get("script"), "live_error": error})
