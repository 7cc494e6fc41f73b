from django.contrib import messages
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from clusters.models import FloatingIP
from clusters.status import layer4_status
from clusters.tasks import apply_dataplane, compare_live_ruleset
from core.audit import record_audit
from core.models import AuditEntry
from core.workers import WorkerUnavailable, ask_dataplane, send_task
from network.models import NetworkConfiguration
from network.services import live_interfaces
from network.tasks import describe_routes


def layer4_configuration(request):
    """View Configuration > Layer 4: the live ruleset, read by the dataplane worker in the
    appliance's namespace, and whether it matches what the configuration asks for."""
    comparison, error = None, ""
    try:
        comparison = ask_dataplane(compare_live_ruleset)
    except WorkerUnavailable as problem:
        error = f"{problem} The live ruleset cannot be shown."
    return render(request, "reports/layer4.html", {
        "page_title": "Layer 4", "comparison": comparison, "error": error,
        "layer4": layer4_status(with_rows=False),
    })


@require_POST
def rebuild_layer4(request):
    """Rebuild lbadmin's table from the configuration (repairs drift), as at worker start."""
    try:
        send_task(apply_dataplane, full=True)
    except WorkerUnavailable as problem:
        messages.error(request, f"Could not reach the dataplane worker: {problem}")
    else:
        record_audit(request.user, "rebuilt the Layer 4 ruleset")
        messages.success(request, "Rebuild requested: the ruleset is being made again from "
                                  "the configuration.")
    return redirect("view:layer4")


def user_log(request):
    return render(request, "reports/user_log.html", {
        "page_title": "User Log", "entries": AuditEntry.objects.all()[:500],
    })


def network_configuration(request):
    """View Configuration > Network Configuration: what is stored, and what the kernel has —
    its interfaces and every route of its main table (the kernel's own subnet routes
    included), as the dataplane worker reads them."""
    listing, error = live_interfaces()
    routes = None
    if listing is not None:
        try:
            routes = ask_dataplane(describe_routes)
        except WorkerUnavailable as problem:
            error = f"{problem} The live routes cannot be shown."
    return render(request, "reports/network.html", {
        "page_title": "Network Configuration", "stored": NetworkConfiguration.load(),
        "floating_ips": FloatingIP.objects.all(), "interfaces": listing or [], "error": error,
        "routes": routes or [],
    })
