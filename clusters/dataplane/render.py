"""Desired state -> nftables, as a pure function (golden-tested in tests/unit).

The shape (DESIGN.md, after nftlb and kube-proxy), all in lbadmin's own `table ip lbadmin`:

- `schedule` (prerouting, mangle): a new connection to a VIP is dispatched by the verdict map
  `services` (VIP . protocol . port -> jump svc_<id>), O(1) however many services.
- `svc_<id>`: puts the service's key (SERVICE_KEY_BIT | id) in the connection mark, then
  replaces it with the mark naming one real server: `numgen inc` (weighted round robin) or
  `numgen random` (least-connection, re-weighted from live counts) over the map `sched`, keyed
  by service key . bucket, whose buckets cover only the servers available now, or the
  fallback. With persistence, a known client (map `persist`, keyed by service key . client
  address) keeps its server while that server is in `sticky`.
  A server with a maximum has `lim_<mark>` (`ct count over N drop`) behind the `limits` map.
- `nat_prerouting`: `dnat` to the mark's address (and port, when the real server has one).
- `nat_postrouting`: masquerade connections whose mark carries MASQ_BIT (MASQ fallback).
- `count` (forward, filter): traffic counters per mark, for Reports and /metrics. Elements of
  the dynamic sets `flows` (mark . direction: packets and bytes in = original, out = reply)
  and `opened` (mark: new connections) are made by the packets themselves, each with its own
  counter, so an apply never touches them (a Halt's difference stays a few elements) and a
  sample reads only the pairs that carried traffic in the last hour (their timeout). A full
  apply starts them from zero; the sampler takes a counter that went down as new.
- in an HA pair only, `pair_input` (input, filter): drops packets of unknown connections
  (`ct state invalid`) to the VIPs (set `pair_vips`). After a takeover keepalived puts the VIPs
  up before conntrackd has committed the peer's connections (8-46 ms, ha-recipe.md F5): a
  mid-stream packet in that window would reach the local VIP and be answered with an RST; dropped,
  it is retransmitted and finds the committed connection. A standalone appliance renders
  exactly what it did before.

A Halt or a Drain changes only map elements; the difference of two Rulesets is one short
script, still applied as one transaction. All maps are global, so their number does not grow
with the services: nft reads every set of the table before it changes one, and 1,000 maps
made a one-element change cost ~35 ms where 7 cost a few.
"""

import functools
import math
from dataclasses import dataclass, field
from functools import reduce

from .desired import MASQ_BIT, NONE_MARK, SERVICE_KEY_BIT

TABLE = "ip lbadmin"
CHUNK = 1000  # elements per statement: a statement of ~14,000 fails with ENOBUFS
WLC_BUCKETS = 1000
FLOW_ELEMENTS = 262144  # counted marks (x2 directions); past it a mark is not counted

BASE = f"""table {TABLE} {{
\tmap services {{ type ipv4_addr . inet_proto . inet_service : verdict; flags interval; }}
\tmap rs_addr {{ type mark : ipv4_addr; }}
\tmap rs_addr_port {{ type mark : ipv4_addr . inet_service; }}
\tset sticky {{ type mark; }}
\tmap limits {{ type mark : verdict; }}
\tmap sched {{ typeof ct mark . numgen inc mod 1 : ct mark; flags interval; }}
\tmap persist {{ typeof ct mark . ip saddr : ct mark; size 1048576;
\t\tflags dynamic,timeout; timeout 1h; }}
\tset flows {{ typeof ct mark . ct direction; size {FLOW_ELEMENTS};
\t\tflags dynamic,timeout; timeout 1h; counter; }}
\tset opened {{ typeof ct mark; size {FLOW_ELEMENTS}; flags dynamic,timeout; timeout 1h; counter; }}
\tchain schedule {{
\t\ttype filter hook prerouting priority mangle; policy accept;
\t\tct state new ip daddr . meta l4proto . th dport vmap @services
\t}}
\tchain count {{
\t\ttype filter hook forward priority filter; policy accept;
\t\tct mark != 0 update @flows {{ ct mark . ct direction }}
\t\tct state new ct mark != 0 update @opened {{ ct mark }}
\t}}
\tchain nat_prerouting {{
\t\ttype nat hook prerouting priority dstnat; policy accept;
\t\tct mark != 0 dnat ip to ct mark map @rs_addr
\t\tmeta l4proto {{ tcp, udp }} ct mark != 0 dnat ip to ct mark map @rs_addr_port
\t}}
\tchain nat_postrouting {{
\t\ttype nat hook postrouting priority srcnat; policy accept;
\t\tct mark & {MASQ_BIT:#x} == {MASQ_BIT:#x} masquerade
\t}}
}}
"""
GLOBAL_MAPS = ("services", "rs_addr", "rs_addr_port", "sticky", "limits", "sched")
PAIR_BASE = f"""table {TABLE} {{
\tset pair_vips {{ type ipv4_addr; }}
\tchain pair_input {{
\t\ttype filter hook input priority filter; policy accept;
\t\tct state invalid ip daddr @pair_vips drop
\t}}
}}
"""
PAIR_SET = "pair_vips"


@dataclass
class Ruleset:
    """What lbadmin's table should hold, in pieces that can be compared one by one."""

    chains: dict = field(default_factory=dict)  # regular chain name -> tuple of rules
    elements: dict = field(default_factory=dict)  # map/set name -> {key: value or None}
    cut_marks: frozenset = frozenset()  # halted pairs: their open connections are cut
    vips: frozenset = frozenset()
    floating_ips: frozenset = frozenset()
    pair: bool = False  # an HA pair's node: PAIR_BASE too (a change of it needs a full apply)


def mark(value):
    return f"{value:#010x}"


def gcd_reduced(weights):
    divisor = reduce(math.gcd, weights, 0) or 1
    return [w // divisor for w in weights]


def share(total, weighted):
    """Split `total` buckets over [(mark, weight)] by largest remainder -> [(low, high, mark)]."""
    weighted = [(m, w) for m, w in weighted if w > 0]
    weight_sum = sum(w for _, w in weighted)
    exact = [(m, total * w / weight_sum) for m, w in weighted]
    counts = {m: int(x) for m, x in exact}
    left = total - sum(counts.values())
    for m, _ in sorted(exact, key=lambda item: item[1] - int(item[1]), reverse=True)[:left]:
        counts[m] += 1
    ranges, low = [], 0
    for m, _ in weighted:
        if counts[m]:
            ranges.append((low, low + counts[m] - 1, m))
            low += counts[m]
    return ranges


def schedule(service, connections):
    """The numgen expression and the buckets of one service: [(low, high, mark)]."""
    available = [s for s in service.servers if s.available and s.weight > 0]
    if service.scheduler == "wlc":
        generator, total = "random", WLC_BUCKETS
        # LVS's WLC picks the least (connections + 1) / weight; a random pick in proportion to
        # weight / (connections + 1) approximates it, re-weighted as counts change (nftlb).
        weighted = [(s.mark, s.weight * 1000 // (connections.get(s.mark, 0) + 1) or 1)
                    for s in available]
    else:
        generator = "inc"
        configured = [s.weight for s in service.servers if s.weight > 0]
        # The modulus stays fixed while servers come and go, so a Halt changes elements only.
        total = max(1, sum(gcd_reduced(configured)))
        weighted = [(s.mark, s.weight) for s in available]
    if weighted:
        return generator, total, share(total, weighted)
    target = service.fallback.mark if service.fallback else NONE_MARK
    return generator, total, [(0, total - 1, target)]


def port_key(low, high):
    return str(low) if low == high else f"{low}-{high}"


def render(desired, pair=False):
    """`pair`: this appliance is a node of an HA pair (core.pairing has an address owner)."""
    rules = Ruleset(pair=pair)
    maps = {name: {} for name in GLOBAL_MAPS}
    cut, vips = set(), set()
    for service in desired.services:
        counts = tuple((s.mark, desired.connections.get(s.mark, 0)) for s in service.servers) \
            if service.scheduler == "wlc" else ()
        chains, elements, service_cut = _render_service(service, counts)
        rules.chains.update(chains)
        for name, items in elements:
            maps[name].update(items)
        cut.update(service_cut)
        vips.add(service.vip)
    if pair:
        maps[PAIR_SET] = {vip: None for vip in sorted(vips) if ":" not in vip}
    rules.elements = maps
    rules.cut_marks = frozenset(cut)
    rules.vips = frozenset(vips)
    rules.floating_ips = desired.floating_ips
    return rules


@functools.lru_cache(maxsize=16384)
def _render_service(service, counts):
    """One service's chains and map elements. Cached: services are frozen values, so a Halt
    among 1,000 services renders one service again, not 1,000."""
    sid = service.id
    key = mark(SERVICE_KEY_BIT | sid)
    maps = {name: {} for name in GLOBAL_MAPS}
    chains, cut = {}, set()
    for protocol in service.protocols:
        for low, high in service.port_ranges:
            maps["services"][f"{service.vip} . {protocol} . {port_key(low, high)}"] = \
                f"jump svc_{sid}"
    generator, total, buckets = schedule(service, dict(counts))
    for low, high, m in buckets:
        maps["sched"][f"{key} . {low}-{high}"] = mark(m)
    pick = f"ct mark set ct mark . numgen {generator} mod {total} map @sched"
    if service.persistence_timeout:
        chains[f"svc_{sid}"] = (
            f"ct mark set {key}",
            "ct mark set ct mark . ip saddr map @persist",
            f"ct mark != @sticky ct mark set {key}",
            f"ct mark & {SERVICE_KEY_BIT:#x} == {SERVICE_KEY_BIT:#x} {pick}",
            "ct mark vmap @limits",
            f"update @persist {{ {key} . ip saddr timeout {service.persistence_timeout}s "
            f": ct mark }}",
        )
    else:
        chains[f"svc_{sid}"] = (f"ct mark set {key}", pick, "ct mark vmap @limits")
    for target in list(service.servers) + ([service.fallback] if service.fallback else []):
        if target.port:
            maps["rs_addr_port"][mark(target.mark)] = f"{target.ip} . {target.port}"
        else:
            maps["rs_addr"][mark(target.mark)] = target.ip
    for server in service.servers:
        if server.sticky:
            maps["sticky"][mark(server.mark)] = None
        if server.cut:
            cut.add(server.mark)
        if server.max_connections:
            chains[f"lim_{server.mark}"] = (f"ct count over {server.max_connections} drop",)
            maps["limits"][mark(server.mark)] = f"jump lim_{server.mark}"
    return chains, tuple(maps.items()), frozenset(cut)


def _element_lines(verb, name, elements):
    items = [key if value is None else f"{key} : {value}" for key, value in elements.items()]
    return [f"{verb} element {TABLE} {name} {{ {', '.join(items[i:i + CHUNK])} }}"
            for i in range(0, len(items), CHUNK)]


def _delete_element_lines(name, keys):
    keys = list(keys)
    return [f"delete element {TABLE} {name} {{ {', '.join(keys[i:i + CHUNK])} }}"
            for i in range(0, len(keys), CHUNK)]


def full_script(rules):
    """Rebuild lbadmin's table from nothing (worker start, drift). One transaction.

    `table` first because `delete table` fails on an absent table.
    """
    lines = [f"table {TABLE}", f"delete table {TABLE}", BASE.rstrip("\n")]
    if rules.pair:
        lines += [PAIR_BASE.rstrip("\n")]
    lines += [f"add chain {TABLE} {name}" for name in rules.chains]
    for name, elements in rules.elements.items():
        lines += _element_lines("add", name, elements)
    for name, chain in rules.chains.items():
        lines += [f"add rule {TABLE} {name} {rule}" for rule in chain]
    return "\n".join(lines) + "\n"


def diff_script(old, new):
    """The statements that turn `old` into `new`, in an order nft accepts in one transaction.

    Returns "" when nothing differs. `old` and `new` are both of a pair or both not: a change of
    that takes a full script.
    """
    if old.pair != new.pair:
        raise ValueError("a change between standalone and pair needs a full apply")
    lines = [f"add chain {TABLE} {name}" for name in new.chains.keys() - old.chains.keys()]
    # chains whose rules change or that go are emptied first; a verdict element may still
    # point at a chain about to go, so elements go before chains
    rewritten = {name for name, chain in new.chains.items()
                 if name in old.chains and old.chains[name] != chain}
    removed_chains = old.chains.keys() - new.chains.keys()
    lines += [f"flush chain {TABLE} {name}" for name in sorted(rewritten | removed_chains)]
    for name, elements in new.elements.items():
        before = old.elements.get(name, {})
        stale = [key for key, value in before.items()
                 if key not in elements or elements[key] != value]
        lines += _delete_element_lines(name, stale)
    lines += [f"delete chain {TABLE} {name}" for name in sorted(removed_chains)]
    for name, elements in new.elements.items():
        before = old.elements.get(name, {})
        fresh = {key: value for key, value in elements.items()
                 if key not in before or before[key] != value}
        lines += _element_lines("add", name, fresh)
    for name in new.chains:
        if name not in old.chains or name in rewritten:
            lines += [f"add rule {TABLE} {name} {rule}" for rule in new.chains[name]]
    return "\n".join(lines) + "\n" if lines else ""
