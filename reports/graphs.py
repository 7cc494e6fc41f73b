"""Reports › Graphs and System Overview's graphs: pictures drawn in the browser (uPlot,
vendored in static/vendor/uplot/, by static/js/graphs.js) from the JSON of `graph_data`, read
from the rings of core/rings.py."""

from django.http import Http404, JsonResponse
from django.shortcuts import render

from clusters.models import VirtualService
from core import rings
from core.graphing import RANGE_NAMES
from network.models import GraphingSettings

SYSTEM_GRAPHS = {
    "bandwidth": "Network bandwidth",
    "packets": "Network packets",
    "load": "Load average",
    "memory": "Memory",
    "disk": "Disk",
}


def lines_of(graph):
    """(title, unit, [(label, series)]) of one graph, or Http404."""
    if graph == "bandwidth" or graph == "packets":
        field, unit = ("bits", "bit/s") if graph == "bandwidth" else ("packets", "packets/s")
        interfaces = sorted({name.split("/")[1] for name in rings.series("if")})
        return SYSTEM_GRAPHS[graph], unit, [
            (f"{interface} {label}", f"if/{interface}/{side}_{field}")
            for interface in interfaces for side, label in (("rx", "in"), ("tx", "out"))]
    if graph == "load":
        return "Load average", "", [(f"{m} min", f"system/load{m}") for m in (1, 5, 15)]
    if graph in ("memory", "disk"):
        return SYSTEM_GRAPHS[graph], "% used", [("used", f"system/{graph}")]
    kind, _, sid = graph.partition("-")
    if kind in ("vs", "vsbytes") and sid.isdigit():
        label = VirtualService.objects.filter(id=int(sid)).values_list("label", flat=True)
        if not label:
            raise Http404("No such virtual service.")
        if kind == "vs":
            return f"{label[0]}: connections and packets", "per second", [
                ("new connections", f"vs/{sid}/conns"), ("packets in", f"vs/{sid}/packets_in"),
                ("packets out", f"vs/{sid}/packets_out")]
        return f"{label[0]}: bytes", "bytes/s", [
            ("in", f"vs/{sid}/bytes_in"), ("out", f"vs/{sid}/bytes_out")]
    raise Http404("No such graph.")


def graph_data(request):
    """{"title", "unit", "range", "x": [unix seconds], "series": [{"label", "values"}]}: what
    uPlot draws (null where nothing was sampled)."""
    range_name = request.GET.get("range", "hour")
    if range_name not in RANGE_NAMES:
        raise Http404("No such range.")
    title, unit, lines = lines_of(request.GET.get("graph", ""))
    xs, series = [], []
    for label, name in lines:
        times, values = rings.fetch(name, range_name)
        if times and len(times) > len(xs):
            xs = times
        series.append({"label": label, "values": values})
    for line in series:  # a series made later than the others: nothing before its start
        line["values"] = [None] * (len(xs) - len(line["values"])) + list(line["values"])
    return JsonResponse({"title": title, "unit": unit, "range": range_name, "x": xs,
                         "series": series})


def graphs(request):
    services = list(VirtualService.objects.order_by("label").values_list("id", "label"))
    chosen = request.GET.get("service", "")
    graphs_shown = list(SYSTEM_GRAPHS)
    if chosen.isdigit() and any(str(sid) == chosen for sid, _ in services):
        graphs_shown = [f"vs-{chosen}", f"vsbytes-{chosen}", *graphs_shown]
    return render(request, "reports/graphs.html", {
        "page_title": "Graphs", "graphs": graphs_shown, "ranges": RANGE_NAMES,
        "services": services, "chosen": chosen,
        "interval": GraphingSettings.load().interval,
        "store_missing": "" if rings.available() else rings.MISSING,
    })
