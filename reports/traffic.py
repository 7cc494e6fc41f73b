"""Reports › Layer 4 Traffic Rate: per virtual service and real server, new connections,
packets and bytes per second in and out, as the sampler (reports.sampler) last took them;
the table refreshes itself (htmx) every sample."""

import redis
from django.shortcuts import render

from clusters.models import RealServer, VirtualService
from core.graphing import INTERVAL
from core.runtime import redis_client

from .sampler import FIELDS, read_rates


def traffic_rows(rates):
    """One row per service, its real servers (and its fallback when it carried traffic)
    under it; a pair the sampler did not see has 0."""
    services = rates["services"] if rates else {}
    servers = rates["servers"] if rates else {}
    zero = dict.fromkeys(FIELDS, 0.0)
    by_service = {}
    for rsid, sid, label, ip, port in RealServer.objects.order_by("id").values_list(
            "id", "service_id", "label", "ip", "port"):
        by_service.setdefault(sid, []).append({
            "label": label, "address": f"{ip}:{port}" if port else ip,
            **servers.get(f"{sid}/{rsid}", zero)})
    rows = []
    for sid, label, vip, ports in VirtualService.objects.order_by("id").values_list(
            "id", "label", "vip", "ports"):
        children = by_service.get(sid, [])
        if f"{sid}/fallback" in servers:
            children.append({"label": "Fallback", "address": "",
                             **servers[f"{sid}/fallback"]})
        rows.append({"id": sid, "label": label, "address": f"{vip}:{ports}",
                     **services.get(str(sid), zero), "servers": children})
    return rows


def traffic_rate(request):
    error = ""
    try:
        rates = read_rates(redis_client())
    except (redis.RedisError, OSError) as problem:
        rates, error = None, str(problem) or type(problem).__name__
    context = {"page_title": "Layer 4 Traffic Rate", "rows": traffic_rows(rates),
               "rates": rates, "error": error, "interval": INTERVAL}
    template = "reports/traffic_table.html" if request.htmx else "reports/traffic.html"
    return render(request, template, context)
