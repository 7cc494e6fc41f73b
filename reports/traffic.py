"""Reports › Layer 4 Traffic Rate: per virtual service and real server, new connections,
packets and bytes per second in and out, as the sampler (reports.sampler) last took them;
the table refreshes itself (htmx) every sample. One page of services at a time, after an
optional search, as Layer 4 Status: 1,000 services are 3,000 rows."""

from urllib.parse import urlencode

import redis
from django.core.paginator import Paginator
from django.db.models import Q
from django.shortcuts import render
from django.urls import reverse

from clusters.models import RealServer, VirtualService
from clusters.status import PER_PAGE
from core.runtime import redis_client
from network.models import GraphingSettings

from .sampler import FIELDS, read_rates


def matching_services(query=""):
    """The services the search box keeps, in the order they were added: a label, a VIP or a
    real server's label or address, any part of it (Layer 4 Status's search)."""
    services = VirtualService.objects.order_by("id")
    if query:
        services = services.filter(
            Q(label__icontains=query) | Q(vip__icontains=query)
            | Q(real_servers__label__icontains=query) | Q(real_servers__ip__icontains=query)
        ).distinct()
    return services


def traffic_rows(rates, shown):
    """One row per service of `shown` (id, label, vip, ports: one page), its real servers (and
    its fallback when it carried traffic) under it; a pair the sampler did not see has 0."""
    services = rates["services"] if rates else {}
    servers = rates["servers"] if rates else {}
    zero = dict.fromkeys(FIELDS, 0.0)
    by_service = {}
    shown = list(shown)
    for rsid, sid, label, ip, port in RealServer.objects.filter(
            service_id__in=[row[0] for row in shown]).order_by("id").values_list(
            "id", "service_id", "label", "ip", "port"):
        by_service.setdefault(sid, []).append({
            "label": label, "address": f"{ip}:{port}" if port else ip,
            **servers.get(f"{sid}/{rsid}", zero)})
    rows = []
    for sid, label, vip, ports in shown:
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
    query = request.GET.get("q", "")[:100].strip()
    shown = Paginator(matching_services(query).values_list("id", "label", "vip", "ports"),
                      PER_PAGE).get_page(request.GET.get("page"))
    here = reverse("reports:layer4-traffic")

    def link(page):
        params = {**({"q": query} if query else {}), **({"page": page} if page > 1 else {})}
        return f"{here}?{urlencode(params)}" if params else here

    context = {"page_title": "Layer 4 Traffic Rate", "rows": traffic_rows(rates, shown),
               "shown": shown, "query": query, "total": VirtualService.objects.count(),
               "poll_url": link(shown.number),
               "previous_link": link(shown.number - 1) if shown.has_previous() else None,
               "next_link": link(shown.number + 1) if shown.has_next() else None,
               "rates": rates, "error": error,
               "interval": GraphingSettings.load().interval}
    template = "reports/traffic_table.html" if request.htmx else "reports/traffic.html"
    return render(request, template, context)
