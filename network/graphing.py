"""Local Configuration › Graphing: what the sampler takes and how often, how long the rings
keep it and what they cost, and the bearer token of /metrics."""

from django.shortcuts import render

from core.graphing import (
    ARCHIVES,
    INTERVAL,
    POINT_BYTES,
    SAMPLED,
    SERIES_BYTES,
    graphs_dir,
    metrics_token,
)


def graphing(request):
    files = list(graphs_dir().rglob("*.wsp")) if graphs_dir().exists() else []
    archives = [{"range": name, "step": step, "points": points,
                 "bytes": points * POINT_BYTES} for name, step, points in ARCHIVES]
    return render(request, "network/graphing.html", {
        "page_title": "Graphing", "interval": INTERVAL, "sampled": SAMPLED,
        "archives": archives, "series_bytes": SERIES_BYTES, "series_count": len(files),
        "store_bytes": len(files) * SERIES_BYTES, "directory": graphs_dir(),
        "token": metrics_token(),
        "metrics_url": request.build_absolute_uri("/metrics"),
    })
