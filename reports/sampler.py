"""The graphs' sampler: a beat task on the dataplane worker (reports.tasks.sample_traffic,
every core.graphing.INTERVAL seconds), in the appliance's namespace, with CAP_NET_ADMIN to
read nftables.

One sample: the table's traffic counters in one libnftables call (clusters.dataplane.nft.
read_counters: only marks that carried traffic in the last hour), /proc for load, memory and
each interface, statvfs for the disk; rates from the difference with the previous sample of
this process; the rates go to Redis (Reports › Layer 4 Traffic Rate, /metrics) and to the
rings (reports/store.py).
"""

import json
import os
import time

from django.conf import settings

from clusters.dataplane import nft
from clusters.dataplane.desired import FALLBACK_BIT, MASQ_BIT
from clusters.models import RealServer
from core.graphing import graphs_dir
from core.runtime import read_meminfo, redis_client

from . import store

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
    {"services": {sid: {field: rate}}, "servers": {"sid/rsid": {field: rate}}}."""
    services, servers = {}, {}
    for (mark, name), count in counted.items():
        owner = owner_of(mark, service_of_server)
        if owner is None or not count:
            continue
        sid, rsid = owner
        for table, key in ((services, str(sid)), (servers, f"{sid}/{rsid}")):
            row = table.setdefault(key, dict.fromkeys(FIELDS, 0.0))
            row[name] += count / seconds
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


def sample(now=None):
    """One sample; returns the rates written (None for the first sample of a process, which
    has nothing to take a difference from)."""
    global _previous
    started = time.monotonic()
    flat = flatten(nft.read_counters())
    interfaces, gauges = system_counters()
    flat.update({("if", name, field): value for (name, field), value in interfaces.items()})
    previous, _previous = _previous, (started, flat)
    values = dict(gauges)
    result = None
    if previous is not None and 0 < started - previous[0] < 10 * 60:
        seconds = started - previous[0]
        counted = deltas(previous[1], flat)
        for key, count in counted.items():
            if key[0] == "if":
                values[f"if/{key[1]}/{key[2]}"] = count / seconds
        service_of_server = dict(RealServer.objects.values_list("id", "service_id"))
        result = rates({key: count for key, count in counted.items() if key[0] != "if"},
                       seconds, service_of_server)
        for sid, row in result["services"].items():
            values.update({f"vs/{sid}/{name}": value for name, value in row.items()})
        for pair, row in result["servers"].items():
            sid, rsid = pair.split("/")
            values.update({f"rs/{sid}/{rsid}/{name}": value for name, value in row.items()})
        # a series that had traffic before gets its 0 now: every existing file is written
        for name in _traffic_series():
            values.setdefault(name, 0.0)
        result.update({"at": now or time.time(), "seconds": seconds})
        redis_client().set(RATES_KEY, json.dumps(result), ex=INTERVAL_KEPT)
    store.write(values, now, always=("system/", "if/"))
    if store.available():  # store.write made a file for every traffic series not at 0
        _traffic_series().update(name for name, value in values.items()
                                 if value and name.startswith(TRAFFIC_SERIES))
    return result


TRAFFIC_SERIES = ("vs/", "rs/")
_known = {}  # graphs directory -> names of its traffic series: listed once, then kept


def _traffic_series():
    """The traffic series that have a file. Listing 15,000 files took 0.19 s of every sample,
    so the directory is listed once per process and the set kept as files are made."""
    root = graphs_dir()
    if root not in _known:
        _known[root] = {name for prefix in TRAFFIC_SERIES
                        for name in store.series(prefix.rstrip("/"))}
    return _known[root]


INTERVAL_KEPT = 60  # seconds the last rates stay readable: older ones are not "now"


def read_rates(client=None):
    """The last rates the sampler wrote, or None (not sampled in the last minute)."""
    raw = (client or redis_client()).get(RATES_KEY)
    return json.loads(raw) if raw else None
