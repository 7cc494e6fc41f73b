"""Logs > Layer 4 (every data-plane apply) and Logs > System (the services' own logs)."""

from django.conf import settings
from django.core.paginator import Paginator
from django.shortcuts import render

from clusters.models import ApplyLogEntry, RealServer
from clusters.runtime import APPLY_LOG_KEPT

from . import service_logs

APPLIES_PER_PAGE = 50
LIVE_EVERY = 3  # seconds between two reads of the live tail


def layer4_log(request):
    """Every apply the dataplane worker made, newest first: generation, full or difference,
    statements, milliseconds, connections cut, warnings, and a failure in the kernel's words."""
    pages = Paginator(ApplyLogEntry.objects.all(), APPLIES_PER_PAGE)
    page = pages.get_page(request.GET.get("page"))
    names = cut_names(page)
    for entry in page:
        entry.cut_servers = [names.get(mark, f"mark {mark} (a real server since removed)")
                             for mark in entry.cut_marks]
    return render(request, "reports/layer4_log.html", {
        "page_title": "Layer 4", "page": page, "kept": APPLY_LOG_KEPT,
    })


def cut_names(entries):
    """{mark: "PrimaryCluster of VNA"} for the marks cut in `entries` (a pair's connection
    mark is its real server's id: clusters.dataplane.desired)."""
    marks = {mark for entry in entries for mark in entry.cut_marks}
    return {server_id: f"{label} of {service}" for server_id, label, service in
            RealServer.objects.filter(id__in=marks).values_list("id", "label",
                                                                "service__label")}


def system_log(request):
    """The services' logs, newest first, filtered by service and level; with `live`, the
    lines refresh themselves every few seconds (an htmx poll of the same URL)."""
    files = service_logs.log_files(settings.LOG_DIR)
    service = request.GET.get("service", "")
    if service and service not in files and service not in service_logs.KNOWN_LOGS:
        service = ""  # a name no log has: show them all
    level = request.GET.get("level", "all")
    if level not in service_logs.LEVEL_FILTERS:
        level = "all"
    live = request.GET.get("live", "on" if "service" not in request.GET else "") == "on"
    lines, missing = service_logs.read_logs(settings.LOG_DIR, service or None, level)
    context = {
        "page_title": "System", "lines": lines, "missing": missing, "service": service,
        "level": level, "live": live, "live_every": LIVE_EVERY,
        "services": sorted(set(files) | set(service_logs.KNOWN_LOGS),
                           key=lambda name: (name not in files, name)),
        "present": files, "levels": list(service_logs.LEVEL_FILTERS),
        "shown": service_logs.LINES_SHOWN,
        "tail_kib": service_logs.TAIL_BYTES // 1024,
        "each_kib": service_logs.TAIL_BYTES_EACH // 1024,
    }
    if request.htmx:
        return render(request, "reports/system_log_lines.html", context)
    return render(request, "reports/system_log.html", context)
