"""HA pair figures on a pair of its own (root, network namespaces; two whole appliances paired
with ha.pairing.do_pair, the guide's service and floating IP saved on the Primary):

- takeover: from the active node's failure (both its links taken down, eth1 — VRRP's — first)
  to the first new connection from the client served through the other node — a prober in the
  client namespace starts a connection to the VIP every 5 ms (50 ms timeout), and the first
  one started after the failure and served counts; median and worst of TAKEOVERS runs,
  alternating which node fails (the failed one's links restored between runs, and the pair
  left steady: it comes back passive, nopreempt);
- flows kept: OPEN connections opened through the active node before each failure (over the
  seven ports), each exchanging a line after the takeover; the share that did, over all runs;
- replication lag: from a Save on the Primary (the service's ports changed through
  clusters.services, committed) to the Secondary's kernel listing the change (its nft listing
  polled); median of LAG_RUNS.

Prints one JSON line: {"ha_takeover_ms_median", "ha_takeover_ms_worst",
"ha_open_flows_kept_ratio", "ha_replication_lag_ms"} (targets < 1000 ms, 1.0, < 1000 ms).
Run: .venv/bin/python -m bench.failover"""

import json
import os
import statistics
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")

from lab import GUIDE_PORTS, VIP  # noqa: E402
from tests.conftest import running_pair  # noqa: E402
from tests.netns.test_ha_failover import (  # noqa: E402
    EXTRA_PORT,
    TOGGLE_PORT,
    links,
    pair_the_product_way,
    ruleset,
    steady,
)
from tests.netns.test_pair_stack import vrrp_state  # noqa: E402
from tests.stacks import in_appliance, wait_for  # noqa: E402

TAKEOVERS = 10
OPEN = 200
LAG_RUNS = 7

PROBER = textwrap.dedent("""
    import socket, sys, time
    host, port = sys.argv[1], int(sys.argv[2])
    while True:
        started = time.time()
        s = socket.socket()
        s.settimeout(0.05)
        try:
            s.connect((host, port))
            if s.makefile().readline().startswith("primary"):
                print(f"{started:.6f} {time.time():.6f}", flush=True)
        except OSError:
            pass
        finally:
            s.close()
        time.sleep(0.005)
""")

HOLD_MANY = textwrap.dedent("""
    import json, socket, sys, time
    host, ports, count = sys.argv[1], json.loads(sys.argv[2]), int(sys.argv[3])
    held = []
    for i in range(count):
        s = socket.create_connection((host, ports[i % len(ports)]), timeout=5)
        lines = s.makefile()
        assert lines.readline().startswith("primary"), "no greeting"
        held.append((s, lines))
    print("open", flush=True)
    sys.stdin.readline()
    for s, _ in held:
        try:
            s.sendall(b"after\\n")
        except OSError:
            pass
    deadline, kept = time.monotonic() + 10, 0
    for s, lines in held:
        try:
            s.settimeout(max(0.01, deadline - time.monotonic()))
            kept += "echo after" in lines.readline()
        except OSError:
            pass
    print(kept, flush=True)
""")


def client(lab, script, *args):
    return subprocess.Popen([*lab.exec_prefix("client"), sys.executable, "-u", "-c", script,
                             *map(str, args)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True)


def takeover(pair, active):
    """Fail `active` (links down) with OPEN connections held through it; (ms to the first
    new connection served through the other node, connections kept, the other node)."""
    [other] = [s for s in pair if s is not active]
    lab = active.lab
    holder = client(lab, HOLD_MANY, VIP, json.dumps(GUIDE_PORTS), OPEN)
    assert holder.stdout.readline().strip() == "open"
    prober = client(lab, PROBER, VIP, GUIDE_PORTS[0])
    served = []
    reader = threading.Thread(target=lambda: served.extend(
        tuple(map(float, line.split())) for line in prober.stdout), daemon=True)
    reader.start()
    assert wait_for(lambda: served, 10)  # the prober is served before the failure
    # the VRRP link first, as a dying node loses it: no priority-0 advert can leave, so the
    # other node takes over after VRRP's master-down interval (taking eth0 down first, the
    # failing node's keepalived sees its tracked interface go, enters FAULT and says so over
    # eth1: the other takes over after the skew time only)
    for interface in ("eth1", "eth0"):
        subprocess.run(["ip", "-n", active.lab.ns(active.lab_role), "link", "set", interface,
                        "down"], check=True)
        if interface == "eth1":
            # from here on nothing from the client reaches the failed node (timed once `ip`
            # is done: a connection started while it runs may still go through the old node)
            failed = time.time()
    try:
        # a connection started after the failure, served: through the other node
        assert wait_for(lambda: any(start > failed for start, _ in served), 30, every=0.01), \
            "no new connection served after the failure"
        first = min(done for start, done in served if start > failed)
        holder.stdin.write("check\n")
        holder.stdin.flush()
        kept = int(holder.stdout.readline())
    finally:
        prober.kill()
        holder.kill()
        prober.wait()
        holder.wait()
        links(active, "up")
    # the failed node comes back passive (nopreempt) and the pair is steady before the next
    assert wait_for(lambda: vrrp_state(active) == "backup" and steady(pair, other), 60), \
        (vrrp_state(active), vrrp_state(other))
    time.sleep(1)  # the returning node's conntrackd resyncs (-n) before the next failure
    return (first - failed) * 1000, kept, other


def replication_lag(primary, secondary, action):
    """ms from the Save's commit on the Primary to the change in the Secondary's kernel."""
    present = action == "add"
    saved = []
    saver = threading.Thread(target=lambda: saved.append(
        float(in_appliance(primary, TOGGLE_PORT, action))))
    saver.start()
    assert wait_for(lambda: (str(EXTRA_PORT) in ruleset(secondary)) == present, 60, every=0.005)
    seen = time.time()
    saver.join()
    return (seen - saved[0]) * 1000


def main():
    with running_pair() as pair:
        primary, secondary = pair
        pair_the_product_way(primary, secondary)
        lags = [replication_lag(primary, secondary, "add" if run % 2 == 0 else "remove")
                for run in range(LAG_RUNS)]
        times, kept, kept_each, active = [], 0, [], primary
        for _ in range(TAKEOVERS):
            took, survived, active = takeover(pair, active)
            times.append(took)
            kept += survived
            kept_each.append(survived)
    print(json.dumps({
        "ha_takeover_ms_median": round(statistics.median(times)),
        "ha_takeover_ms_worst": round(max(times)),
        "ha_open_flows_kept_ratio": round(kept / (OPEN * TAKEOVERS), 4),
        "ha_replication_lag_ms": round(statistics.median(lags)),
    }))
    print(f"takeovers (ms): {[round(t) for t in times]}; replication lags (ms): "
          f"{[round(lag) for lag in lags]}; flows kept per takeover: {kept_each}",
          file=sys.stderr)


if __name__ == "__main__":
    main()
