"""Local Configuration › Graphing: what the sampler takes and how often (stored in
GraphingSettings), how long the rings keep it and what they cost, and the bearer token of
/metrics."""

from django.contrib import messages
from django.shortcuts import redirect, render

from core import rings
from core.graphing import (
    REAL_SERVERS_SAMPLED,
    SAMPLED,
    SERIES_PER_SERVICE,
    VALUE_BYTES,
    graphs_dir,
    layout,
    metrics_token,
    series_bytes,
)
from core.queues import TASK_ROUTES

from . import services
from .forms import GraphingForm
from .models import GraphingSettings


def graphing(request):
    stored = GraphingSettings.load()
    form = GraphingForm(request.POST or None, instance=stored)
    if request.method == "POST" and form.is_valid():
        services.do_save_graphing(form.save(commit=False), request.user)
        messages.success(request, "Graphing settings saved: the sampler takes them at its "
                                  "next run.")
        return redirect("local:graphing")
    interval = stored.interval
    archives = [{"range": name, "step": step, "points": points,
                 "bytes": points * VALUE_BYTES} for name, step, points in layout(interval)]
    series_count, store_bytes = rings.usage()
    sampled = [*SAMPLED, *([REAL_SERVERS_SAMPLED] if stored.real_servers else [])]
    per_series = series_bytes(interval)
    return render(request, "network/graphing.html", {
        "page_title": "Graphing", "form": form, "interval": interval, "sampled": sampled,
        "archives": archives, "series_bytes": per_series,
        "service_bytes": SERIES_PER_SERVICE * per_series,
        "ring_overhead": sum(rings.ring_file_bytes(points) for _, _, points in layout(interval))
        - rings.BLOCK * per_series,  # each file's header and its points' times
        "block_series": rings.BLOCK, "series_count": series_count, "store_bytes": store_bytes,
        "directory": graphs_dir(), "token": metrics_token(),
        "worker": TASK_ROUTES["reports.tasks.sample_traffic"]["queue"],
        "metrics_url": request.build_absolute_uri("/metrics"),
    })
