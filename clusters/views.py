import datetime
import time
from urllib.parse import urlencode

import redis
from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from core import alerts, health, runtime
from core.audit import record_audit
from network.forms import connected_networks
from network.models import NetworkConfiguration
from network.services import live_interfaces

from . import services, status
from .forms import (
    UNAVAILABLE_FORWARDING,
    AlertSettingsForm,
    FloatingIPForm,
    RealServerForm,
    StateForm,
    VirtualServiceForm,
)
from .models import AlertSettings, FloatingIP, RealServer, VirtualService

HTMX_STOP_POLLING = 286
NOT_CHANGED = 204  # htmx swaps nothing on a 204: the poll's page is still what it shows


def overview(request):
    host = runtime.host_figures()
    layer4 = layer4_page(request.GET)
    unplaced = layer4.apply.unplaced if layer4.apply else frozenset()
    return render(request, "clusters/overview.html", {
        "page_title": "System Overview",
        "host": host,
        "uptime_words": duration_words(host.uptime_seconds),
        "memory_total_mib": host.memory_total_kib // 1024,
        "memory_available_mib": host.memory_available_kib // 1024,
        **layer4_context(layer4),
        "floating_ips": [(floating.address, floating.address in unplaced)
                         for floating in FloatingIP.objects.all()],
    })


def layer4_page(params):
    """One page of the Layer 4 table, as the search box and the page links (`q`, `problems`,
    `page` in GET, or in the query string of a state button's POST) ask for it."""
    try:
        page = int(params.get("page", 1))
    except ValueError:
        page = 1
    return status.layer4_status(query=params.get("q", "")[:100], page=page,
                                problems_only=params.get("problems") == "1",
                                per_page=status.PER_PAGE)


def layer4_context(layer4):
    """The table and the addresses its poll, page links and buttons use: the poll sends the
    digest of what it shows and gets a 204 while nothing changed."""
    view, partial, full = layer4.view, reverse("overview:layer4"), reverse("overview:index")

    def link(params):
        if params is None:
            return None
        query = f"?{urlencode(params)}" if params else ""
        return {"page": f"{full}{query}", "partial": f"{partial}{query}"}

    return {
        "layer4": layer4,
        "poll_url": f"{partial}?{urlencode(view.params() | {'digest': layer4.digest})}",
        "state_query": f"?{urlencode(view.params())}" if view.params() else "",
        "previous_link": link(view.previous_params),
        "next_link": link(view.next_params),
    }


def layer4_table(request):
    """The virtual services table; System Overview polls it (204 while what it shows is
    unchanged) and the search box, the page links and the buttons swap it in."""
    layer4 = layer4_page(request.GET)
    if request.method == "GET" and request.GET.get("digest") == layer4.digest:
        return HttpResponse(status=NOT_CHANGED)
    return render(request, "clusters/layer4_table.html", layer4_context(layer4))


@require_POST
def set_state(request, pk):
    server = get_object_or_404(RealServer.objects.select_related("service"), pk=pk)
    form = StateForm(request.POST)
    if form.is_valid():
        services.do_set_state(server, form.cleaned_data["state"], request.user)
    if request.htmx:
        return layer4_table(request)  # the page the button was on: its query string
    query = request.GET.urlencode()
    return redirect(reverse("overview:index") + (f"?{query}" if query else ""))


def health_details(request, pk):
    """The last check of one real server: result per port and the script's output."""
    server = get_object_or_404(RealServer.objects.select_related("service"), pk=pk)
    try:
        health_now, error = health.load(server.pk), ""
    except (redis.RedisError, OSError) as problem:
        health_now, error = None, f"Redis is down ({problem}): the last results cannot be read."
    return render(request, "clusters/health_details.html", {
        "page_title": "System Overview", "server": server, "health": health_now,
        "error": error,
        "words": status.health_words(server.service, health_now) if health_now else "",
    })


def service_status(request):
    """Partial polled by the overview: Redis, each worker queue's heartbeats and beat's, in
    one Redis round trip (no broadcast ping waiting out its timeout)."""
    return render(request, "clusters/service_status.html", {
        "status": runtime.service_status(),
        "stale_after": runtime.WORKER_HEARTBEAT_TTL,
    })


def apply_banner(request):
    """'Applying…' until the newest change is live; polling stops once it is settled."""
    layer4 = status.layer4_status(with_rows=False)
    response = render(request, "clusters/apply_banner.html", {"layer4": layer4})
    if layer4.state in ("applied", "failed"):
        response.status_code = HTMX_STOP_POLLING
    return response


def duration_words(seconds):
    minutes, _ = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h {minutes} min" if days else f"{hours} h {minutes} min"


# Cluster Configuration > Layer 4 – Virtual Services

def virtual_services(request):
    return render(request, "clusters/virtual_services.html", {
        "page_title": "Layer 4 – Virtual Services",
        "services": VirtualService.objects.prefetch_related("real_servers"),
        "layer4": status.layer4_status(with_rows=False),
    })


def virtual_service_edit(request, pk=None):
    service = get_object_or_404(VirtualService, pk=pk) if pk else VirtualService()
    form = VirtualServiceForm(request.POST or None, instance=service)
    if request.method == "POST" and form.is_valid():
        services.do_save_service(form.instance, request.user)
        messages.success(request, f"Virtual service {form.instance.label} saved.")
        return redirect("cluster:virtual-services")
    return render(request, "clusters/virtual_service_form.html", {
        "page_title": "Layer 4 – Virtual Services",
        "heading": f"Modify virtual service {service.label}" if pk else "Add a new Virtual Service",
        "form": form, "unavailable_forwarding": UNAVAILABLE_FORWARDING,
    })


def virtual_service_delete(request, pk):
    service = get_object_or_404(VirtualService, pk=pk)
    if request.method == "POST":
        services.do_delete_service(service, request.user)
        messages.success(request, f"Virtual service {service.label} deleted.")
        return redirect("cluster:virtual-services")
    return render(request, "clusters/confirm_delete.html", {
        "page_title": "Layer 4 – Virtual Services", "what": "virtual service",
        "object": service, "cancel": "cluster:virtual-services",
        "consequence": "Its real servers are deleted with it and its VIP stops answering.",
    })


# Cluster Configuration > Layer 4 – Real Servers

def real_servers(request):
    return render(request, "clusters/real_servers.html", {
        "page_title": "Layer 4 – Real Servers",
        "services": VirtualService.objects.prefetch_related("real_servers"),
        "layer4": status.layer4_status(with_rows=False),
    })


def real_server_edit(request, service_pk=None, pk=None):
    if pk:
        server = get_object_or_404(RealServer.objects.select_related("service"), pk=pk)
        service = server.service
    else:
        service = get_object_or_404(VirtualService, pk=service_pk)
        server = RealServer(service=service)
    form = RealServerForm(request.POST or None, instance=server, service=service)
    if request.method == "POST" and form.is_valid():
        services.do_save_real_server(form.instance, request.user)
        messages.success(request, f"Real server {form.instance.label} of {service.label} saved.")
        return redirect("cluster:real-servers")
    return render(request, "clusters/real_server_form.html", {
        "page_title": "Layer 4 – Real Servers",
        "heading": (f"Modify real server {server.label}" if pk else "Add a new Real Server"),
        "service": service, "form": form,
    })


def real_server_delete(request, pk):
    server = get_object_or_404(RealServer.objects.select_related("service"), pk=pk)
    if request.method == "POST":
        services.do_delete_real_server(server, request.user)
        messages.success(request, f"Real server {server.label} deleted.")
        return redirect("cluster:real-servers")
    return render(request, "clusters/confirm_delete.html", {
        "page_title": "Layer 4 – Real Servers", "what": "real server", "object": server,
        "cancel": "cluster:real-servers",
        "consequence": "It gets no new connections; open ones are left to finish.",
    })




# Cluster Configuration > Floating IP's

def floating_ips(request):
    listing, error = live_interfaces()
    # the configuration's subnets, never the kernel's: the same rule as a restore
    form = FloatingIPForm(request.POST or None, networks=connected_networks(
        [], NetworkConfiguration.load().interfaces))
    if request.method == "POST" and listing is not None and form.is_valid():
        services.do_add_floating_ip(form.cleaned_data["address"], request.user)
        messages.success(request, f"Floating IP {form.cleaned_data['address']} added.")
        return redirect("cluster:floating-ips")
    placed = {a["cidr"].split("/")[0]: i["name"] for i in listing or []
              for a in i["marked"] if a["role"] == "floating"}
    return render(request, "clusters/floating_ips.html", {
        "page_title": "Floating IP's", "form": form, "error": error, "placed": placed,
        "floating_ips": FloatingIP.objects.all(),
        "layer4": status.layer4_status(with_rows=False),
    })


@require_POST
def floating_ip_remove(request, pk):
    floating = get_object_or_404(FloatingIP, pk=pk)
    services.do_remove_floating_ip(floating, request.user)
    messages.success(request, f"Floating IP {floating.address} removed.")
    return redirect("cluster:floating-ips")


# Cluster Configuration > Layer 4 – Advanced Configuration

TEST_ALERT_WAIT = 30  # seconds the page waits for the maintenance worker's answer


def layer4_advanced(request):
    """The Layer 4 settings of the whole appliance: today the alerts (where they go: email
    through the Smart Host, a webhook, SNMP traps), with the last delivery's result and a
    "Send test alert" button."""
    form = AlertSettingsForm(request.POST or None, instance=AlertSettings.load())
    if request.method == "POST" and form.is_valid():
        services.do_save_alert_settings(form.instance, request.user)
        messages.success(request, "Layer 4 advanced configuration saved.")
        return redirect("cluster:layer4-advanced")
    try:
        delivery, delivery_error = alerts.delivery_status(), ""
    except (redis.RedisError, OSError) as problem:
        delivery, delivery_error = {}, f"Redis is down ({problem}): alerts cannot be queued."
    return render(request, "clusters/layer4_advanced.html", {
        "page_title": "Layer 4 – Advanced Configuration", "form": form,
        "delivery": {key: _time_words(value) if key.endswith("_at") else value
                     for key, value in delivery.items()},
        "delivery_error": delivery_error, "test": _test_context(request.GET),
    })


def _time_words(unix_time):
    at = datetime.datetime.fromtimestamp(float(unix_time), datetime.UTC)
    return timezone.localtime(at).strftime("%Y-%m-%d %H:%M:%S %Z")


@require_POST
def send_test_alert(request):
    """Queue a test alert through every channel saved; the page then polls for its outcome,
    which the maintenance worker records once it has tried each channel."""
    settings = AlertSettings.load()
    if not settings.channels:
        messages.error(request, "No alert destination is saved: enter an Email Alert "
                                "Destination Address and a Smart Host, a Webhook URL or an "
                                "SNMP Trap Receiver, and Update first.")
        return redirect("cluster:layer4-advanced")
    alert = alerts.raise_alert("test", f"This is a test alert, sent by {request.user} from "
                                       "Layer 4 – Advanced Configuration.")
    if alert is None:
        messages.error(request, "The test alert was not sent: Redis is down, so nothing can "
                                "be queued for the maintenance worker.")
        return redirect("cluster:layer4-advanced")
    record_audit(request.user, "sent a test alert "
                               f"({', '.join(settings.channels)})")
    return redirect(f"{reverse('cluster:layer4-advanced')}?"
                    f"{urlencode({'test': alert.id, 'sent': int(alert.at)})}")


def _test_context(params):
    """The test alert the page waits for (its id and when it was sent), if any."""
    alert_id, sent = params.get("test", ""), params.get("sent", "")
    if not (len(alert_id) == 32 and all(c in "0123456789abcdef" for c in alert_id)
            and sent.isdigit()):
        return None
    return {"id": alert_id, "sent": int(sent),
            "poll": f"{reverse('cluster:test-alert-result')}?"
                    f"{urlencode({'test': alert_id, 'sent': sent})}"}


def test_alert_result(request):
    """The test alert's outcome in words; polled every second until known (then 286)."""
    test = _test_context(request.GET)
    if test is None:
        return HttpResponse("No test alert named.", status=400)
    try:
        result, error = alerts.read_result(test["id"]), ""
    except (redis.RedisError, OSError) as problem:
        result, error = None, f"Redis is down ({problem}): the outcome cannot be read."
    waited = time.time() - test["sent"]
    done = result is not None or error or waited > TEST_ALERT_WAIT
    response = render(request, "clusters/test_alert_result.html", {
        "test": test, "result": result, "error": error, "done": done,
        "gave_up": result is None and not error and waited > TEST_ALERT_WAIT,
        "wait": TEST_ALERT_WAIT})
    if done:
        response.status_code = HTMX_STOP_POLLING
    return response
