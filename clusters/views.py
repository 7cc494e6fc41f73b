from django.shortcuts import render

from appliance import runtime

STATUS_TIMEOUT = 1.0  # seconds a worker has to answer the overview's ping


def overview(request):
    host = runtime.host_figures()
    return render(request, "clusters/overview.html", {
        "page_title": "System Overview",
        "host": host,
        "uptime_words": duration_words(host.uptime_seconds),
        "memory_total_mib": host.memory_total_kib // 1024,
        "memory_available_mib": host.memory_available_kib // 1024,
    })


def service_status(request):
    """Partial polled by the overview: Redis, each worker queue, beat, asked right now."""
    return render(request, "clusters/service_status.html", {
        "status": runtime.service_status(STATUS_TIMEOUT),
        "timeout": STATUS_TIMEOUT,
    })


def duration_words(seconds):
    minutes, _ = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h {minutes} min" if days else f"{hours} h {minutes} min"
