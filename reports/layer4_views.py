"""Reports › Layer 4 Status and Reports › Layer 4 Current Connections (reports.layer4_reports
says where each figure comes from). One URL, two renderings: the page, or its partial for
htmx (the Status table's poll, the Connections filters and page links)."""

from datetime import datetime
from urllib.parse import urlencode

import redis
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone

from clusters import runtime
from clusters.models import VirtualService
from clusters.status import PER_PAGE as SERVICES_PER_PAGE
from clusters.status import layer4_status
from core.runtime import redis_client
from core.workers import WorkerUnavailable, ask_worker

from . import layer4_reports as reports
from .tasks import list_connections


def _int(text, default=1):
    try:
        return int(text)
    except (TypeError, ValueError):
        return default


def layer4_status_page(request):
    query = request.GET.get("q", "")[:100]
    layer4 = layer4_status(query=query, page=_int(request.GET.get("page")),
                           per_page=SERVICES_PER_PAGE)
    sampled_at, states, states_error = 0.0, {}, ""
    try:
        sampled_at, states = runtime.read_connection_states(redis_client())
    except (redis.RedisError, OSError) as problem:
        states_error = f"Redis is down ({problem}): the connection counts cannot be shown."
    view = layer4.view
    partial = reverse("reports:layer4-status")

    def link(params):
        return f"{partial}?{urlencode(params)}" if params is not None else None

    context = {
        "page_title": "Layer 4 Status", "layer4": layer4, "view": view,
        "services": reports.status_rows(layer4.rows, states),
        "sampled_at": datetime.fromtimestamp(sampled_at, tz=timezone.get_current_timezone())
        if sampled_at else None, "states_error": states_error,
        "poll_url": link(view.params()),
        "previous_link": link(view.previous_params), "next_link": link(view.next_params),
    }
    template = "reports/layer4_status_table.html" if request.htmx \
        else "reports/layer4_status.html"
    return render(request, template, context)


def layer4_connections_page(request):
    chosen = reports.ConnectionFilter.from_query(request.GET)
    answer, error = None, ""
    marks = chosen.marks()
    if chosen.errors:
        pass
    elif marks == []:
        answer = {"total": 0, "rows": []}
    else:
        try:
            answer = ask_worker(list_connections, marks=marks, client=chosen.client,
                                offset=chosen.offset, limit=reports.PER_PAGE)
        except WorkerUnavailable as problem:
            error = f"{problem} The tracked connections cannot be shown."
    rows = reports.connection_rows(answer) if answer else []
    paging = reports.Paging(chosen.page, reports.PER_PAGE, answer["total"] if answer else 0,
                            len(rows))
    here = reverse("reports:layer4-connections")
    # the total came from the sampler (reports.tasks.list_connections) when there are more
    # connections than the pages read so far
    counted_at = answer.get("counted_at") if answer and paging.last < paging.total else None

    def link(page):
        params = chosen.params(page)
        return f"{here}?{urlencode(params)}" if params else here

    context = {
        "page_title": "Layer 4 Current Connections", "chosen": chosen, "answer": answer,
        "rows": rows, "paging": paging, "error": error,
        "counted_at": datetime.fromtimestamp(counted_at, tz=timezone.get_current_timezone())
        if counted_at else None,
        "services": VirtualService.objects.prefetch_related("real_servers"),
        "previous_link": link(chosen.page - 1) if chosen.page > 1 else None,
        "next_link": link(chosen.page + 1) if chosen.page < paging.pages else None,
        "refresh_link": link(chosen.page),
    }
    template = "reports/layer4_connections_table.html" if request.htmx \
        else "reports/layer4_connections.html"
    return render(request, template, context)
