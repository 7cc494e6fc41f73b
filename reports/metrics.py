"""Prometheus /metrics on the WebUI's port, through prometheus_client: per virtual service and
real server, state, open connections, traffic rates (as last sampled), health-check results,
and the last apply's duration and outcome.

Not the admin session: a bearer token of its own (core.graphing.metrics_token, shown on Local
Configuration › Graphing). Everything is read at scrape time from the database and Redis; a
registry of its own, so nothing else of the process leaks in.
"""

import hmac

import redis
from django.contrib.auth.decorators import login_not_required
from django.http import HttpResponse
from django.views.decorators.http import require_GET

from clusters import runtime
from clusters.models import RealServer, VirtualService
from core import health
from core.graphing import metrics_token
from core.runtime import redis_client

from .sampler import FIELDS, read_rates

try:
    from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
    from prometheus_client.core import GaugeMetricFamily
except ImportError:  # an image that predates /metrics (pyproject's "observability" extra)
    generate_latest = None
MISSING = ("/metrics needs the prometheus_client library, which this appliance's image does "
           "not have: install a new appliance image (an update replaces code, not the Python "
           "packages).\n")

RATE_HELP = {
    "conns": ("new_connections_per_second", "New connections per second, as last sampled."),
    "packets_in": ("packets_in_per_second", "Packets per second from clients."),
    "packets_out": ("packets_out_per_second", "Packets per second of replies."),
    "bytes_in": ("bytes_in_per_second", "Bytes per second from clients."),
    "bytes_out": ("bytes_out_per_second", "Bytes per second of replies."),
}


class ApplianceCollector:
    def collect(self):
        up = GaugeMetricFamily("lbadmin_up", "1 when Redis (runtime state) answered.")
        try:
            client = redis_client()
            status = runtime.read_status(client)
            connections = runtime.read_connections(client)
            down = health.down_servers(client)
            rates = read_rates(client) or {"services": {}, "servers": {}}
        except (redis.RedisError, OSError):
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        services = dict(VirtualService.objects.values_list("id", "label"))
        vs_labels = ["service"]
        rs_labels = ["service", "real_server", "address"]
        state = GaugeMetricFamily("lbadmin_real_server_state",
                                  "1 for the real server's administrative state.",
                                  labels=[*rs_labels, "state"])
        healthy = GaugeMetricFamily("lbadmin_real_server_health_check_up",
                                    "1 when the health checks find the real server up.",
                                    labels=rs_labels)
        conns = GaugeMetricFamily("lbadmin_real_server_connections",
                                  "Open connections (conntrack), as last sampled.",
                                  labels=rs_labels)
        rs_rates = {field: GaugeMetricFamily(f"lbadmin_real_server_{name}", text,
                                             labels=rs_labels)
                    for field, (name, text) in RATE_HELP.items()}
        vs_rates = {field: GaugeMetricFamily(f"lbadmin_virtual_service_{name}", text,
                                             labels=vs_labels)
                    for field, (name, text) in RATE_HELP.items()}
        vs_conns = GaugeMetricFamily("lbadmin_virtual_service_connections",
                                     "Open connections of the service's real servers.",
                                     labels=vs_labels)
        totals = {}
        for rsid, sid, label, ip, port, admin in RealServer.objects.values_list(
                "id", "service_id", "label", "ip", "port", "state"):
            names = [services.get(sid, str(sid)), label, f"{ip}:{port}" if port else ip]
            for choice in RealServer.State.values:
                state.add_metric([*names, choice], 1 if admin == choice else 0)
            healthy.add_metric(names, 0 if rsid in down else 1)
            count = connections.get(rsid, 0)
            conns.add_metric(names, count)
            totals[sid] = totals.get(sid, 0) + count
            row = rates["servers"].get(f"{sid}/{rsid}", {})
            for field in FIELDS:
                rs_rates[field].add_metric(names, row.get(field, 0.0))
        for sid, label in services.items():
            vs_conns.add_metric([label], totals.get(sid, 0))
            row = rates["services"].get(str(sid), {})
            for field in FIELDS:
                vs_rates[field].add_metric([label], row.get(field, 0.0))
        yield from (state, healthy, conns, vs_conns, *rs_rates.values(), *vs_rates.values())
        applied = GaugeMetricFamily("lbadmin_apply_last_milliseconds",
                                    "Duration of the last successful apply.")
        applied.add_metric([], status.milliseconds)
        failing = GaugeMetricFamily(
            "lbadmin_apply_failing",
            "1 when the newest apply failed (the kernel keeps the previous ruleset).")
        failing.add_metric([], 1 if status.failed_generation > status.applied_generation else 0)
        generation = GaugeMetricFamily("lbadmin_apply_generation",
                                       "Configuration generation live in the kernel.")
        generation.add_metric([], status.applied_generation)
        yield from (applied, failing, generation)


def authorised(request):
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(),
                                                              metrics_token().encode())


@login_not_required
@require_GET
def metrics(request):
    if not authorised(request):
        response = HttpResponse("A bearer token is needed (Local Configuration › Graphing).\n",
                                status=401, content_type="text/plain")
        response["WWW-Authenticate"] = 'Bearer realm="lbadmin metrics"'
        return response
    if generate_latest is None:
        return HttpResponse(MISSING, status=503, content_type="text/plain; charset=utf-8")
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ApplianceCollector())
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
