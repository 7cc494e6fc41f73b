"""The graphs' sampler: a beat task (reports.tasks.sample_traffic, sent every
core.graphing.BEAT_EVERY seconds to the worker core.queues routes it to; it samples when Local
Configuration › Graphing's interval is due), in the appliance's namespace, with CAP_NET_ADMIN
to read nftables.

One sample: the table's traffic counters (clusters.dataplane.nft.read_counters: only marks
that carried traffic in the last hour), /proc for load, memory and each interface, statvfs for
the disk; rates from the difference with the previous sample of this process; the rates go to
Redis (Reports › Layer 4 Traffic Rate, /metrics) and to the rings (core/rings.py).
"""

import json
import os
import time

from django.conf import settings

from clusters.dataplane import nft
from clusters.dataplane.desired import FALLBACK_BIT, MASQ_BIT
from clusters.models import ConfigGeneration, RealServer, VirtualService
from core import rings
from core.graphing import BEAT_EVERY
from core.runtime import read_meminfo, redis_client
from network.models import GraphingSettings

RATES_KEY = "lbadmin:traffic:rates"
FIELDS = ("conns", "packets_in", "packets_out", "bytes_in", "bytes_out")
_previous = None  # (monotonic time, flat counters) of this process's last sample


def flatten(counters):
    """nft.read_counters() -> {(mark, field): cumulative value}."""
    flat = {}
    for (mark, direction), (packets, octets) in counters["flows"].items():
        side = "in" if direction == "original" else "out"
        flat[(mark, f"packets_{side}")] = packets
        flat[(mark, f"bytes_{side}")] = octets
    for mark, opened in counters["opened"].items():
        flat[(mark, "conns")] = opened
    return flat


def deltas(before, after):
    """What each counter counted between two samples. A counter absent before (its element
    was made since: its whole count is new) or lower than before (a full apply started it
    again) counts from 0."""
    out = {}
    for key, value in after.items():
        previous = before.get(key)
        out[key] = value if previous is None or value < previous else value - previous
    return out


def owner_of(mark, service_of_server):
    """(service id, real server id or "fallback") of a connection mark, or None."""
    if mark & FALLBACK_BIT:
        return mark & ~(FALLBACK_BIT | MASQ_BIT), "fallback"
    service = service_of_server.get(mark)
    return (service, mark) if service is not None else None


def rates(counted, seconds, service_of_server):
    """{(mark, field): count} over `seconds` -> per service and per pair, per second:
    {"services": {sid: {field: rate}}, "servers": {"sid/rsid": {field: rate}}}. Per pair
    first, then each service the sum of its pairs: at 10,000 moving counters, a third of the
    time of adding every count to both."""
    pairs, owners = {}, {}
    for (mark, name), count in counted.items():
        if not count:  # most counters of a large table, most of the time: nothing to add
            continue
        owner = owners.get(mark, False)
        if owner is False:
            owner = owners[mark] = owner_of(mark, service_of_server)
        if owner is None:
            continue
        row = pairs.get(owner)
        if row is None:
            row = pairs[owner] = dict.fromkeys(FIELDS, 0.0)
        row[name] += count / seconds
    services, servers = {}, {}
    for (sid, rsid), row in pairs.items():
        servers[f"{sid}/{rsid}"] = row
        total = services.get(str(sid))
        if total is None:
            services[str(sid)] = dict(row)
        else:
            for name, rate in row.items():
                total[name] += rate
    return {"services": services, "servers": servers}


def read_interfaces(text):
    """/proc/net/dev -> {name: (rx_bytes, rx_packets, tx_bytes, tx_packets)}."""
    found = {}
    for line in text.splitlines()[2:]:
        name, _, rest = line.partition(":")
        fields = rest.split()
        if len(fields) >= 10 and name.strip() != "lo":
            found[name.strip()] = (int(fields[0]), int(fields[1]), int(fields[8]),
                                   int(fields[9]))
    return found


def system_counters():
    """Cumulative interface counters and the instant system figures."""
    with open("/proc/net/dev") as handle:
        interfaces = read_interfaces(handle.read())
    with open("/proc/meminfo") as handle:
        total, available = read_meminfo(handle.read())
    disk = os.statvfs(settings.DATA_DIR)
    flat = {}
    for name, (rx_bytes, rx_packets, tx_bytes, tx_packets) in interfaces.items():
        flat[(name, "rx_bits")] = rx_bytes * 8
        flat[(name, "rx_packets")] = rx_packets
        flat[(name, "tx_bits")] = tx_bytes * 8
        flat[(name, "tx_packets")] = tx_packets
    load = os.getloadavg()
    gauges = {
        "system/load1": load[0], "system/load5": load[1], "system/load15": load[2],
        "system/memory": 100 * (total - available) / total if total else 0,
        "system/disk": 100 * (1 - disk.f_bavail / disk.f_blocks) if disk.f_blocks else 0,
    }
    return flat, gauges


def sample(now=None, graphing=None):
    """One sample; returns the rates written (None for the first sample of a process, which
    has nothing to take a difference from)."""
    global _previous
    graphing = graphing or GraphingSettings.load()
    started = time.monotonic()
    flat = flatten(nft.read_counters())
    interfaces, gauges = system_counters()
    flat.update({("if", name, field): value for (name, field), value in interfaces.items()})
    previous, _previous = _previous, (started, flat)
    values = dict(gauges)
    result = None
    # what a sample is allowed to span: a few missed intervals, not a stopped worker's hours
    if previous is not None and 0 < started - previous[0] < max(10 * 60, 3 * graphing.interval):
        seconds = started - previous[0]
        counted = deltas(previous[1], flat)
        for key, count in counted.items():
            if key[0] == "if":
                values[f"if/{key[1]}/{key[2]}"] = count / seconds
        service_of_server = owners()
        result = rates({key: count for key, count in counted.items() if key[0] != "if"},
                       seconds, service_of_server)
        for sid, row in result["services"].items():
            values.update({f"vs/{sid}/{name}": value for name, value in row.items()})
        if graphing.real_servers:
            for pair, row in result["servers"].items():
                sid, rsid = pair.split("/")
                values.update({f"rs/{sid}/{rsid}/{name}": value for name, value in row.items()})
        result.update({"at": now or time.time(), "seconds": seconds})
        redis_client().set(RATES_KEY, json.dumps(result),
                           ex=max(INTERVAL_KEPT, 3 * graphing.interval))
    # a series that had traffic before gets its 0 now (`zero`): its line goes down to 0
    rings.write(values, now, interval=graphing.interval, always=("system/", "if/"),
                zero=("vs/", "rs/") if graphing.real_servers else ("vs/",))
    return result


_last_sampled = None  # monotonic time of this process's last sample (sample_if_due)


def sample_if_due():
    """What beat sends every BEAT_EVERY seconds: a sample when the configured interval has
    passed since this process's last one (half a beat early is due: beat's ticks jitter), else
    nothing. Returns whether it sampled."""
    global _last_sampled
    graphing = GraphingSettings.load()
    now = time.monotonic()
    if _last_sampled is not None and now - _last_sampled < graphing.interval - BEAT_EVERY / 2:
        return False
    _last_sampled = now
    sample(graphing=graphing)
    return True


_generation = {}  # the configuration generation whose deleted series were last forgotten


def owners():
    """{real server id (its mark): service id}; when the configuration generation changed,
    the series of deleted services and real servers are forgotten too (their columns freed
    for new ones)."""
    servers = dict(RealServer.objects.values_list("id", "service_id"))
    generation = ConfigGeneration.current()
    if _generation.get("number") != generation:
        forget_deleted(set(VirtualService.objects.values_list("id", flat=True)), servers)
        _generation["number"] = generation
    return servers


def forget_deleted(service_ids, service_of_server):
    """Free the columns of the series whose service or real server is gone."""
    return rings.forget([name for name in rings.series("vs") + rings.series("rs")
                         if not still_there(name.split("/"), service_ids, service_of_server)])


def still_there(parts, service_ids, service_of_server):
    """Whether the service of a series ["vs", sid, field] or the pair of ["rs", sid, rsid,
    field] still exists (a fallback's pair lives as long as its service)."""
    if not parts[1].isdigit() or int(parts[1]) not in service_ids:
        return False
    return parts[0] != "rs" or parts[2] == "fallback" or (
        parts[2].isdigit() and service_of_server.get(int(parts[2])) == int(parts[1]))


INTERVAL_KEPT = 60  # seconds the last rates stay readable at least: older ones are not "now"


def read_rates(client=None):
    """The last rates the sampler wrote, or None (not sampled in the last minute)."""
    raw = (client or redis_client()).get(RATES_KEY)
    return json.loads(raw) if raw else None
