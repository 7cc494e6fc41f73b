"""Health-check engine benchmark on the real stack (`make bench`).

1,000 real servers, each checked on the guide's 7 ports (Connect to Port, every port of its
service) every 30 s, by beat's dispatch and the checks worker in the lab's lb namespace, for
RUN_SECONDS: the p99 lateness of checks against their schedule and the CPU the checks worker
and beat used (percent of one core). Then one more real server, checked every 2 s with a
Failure Count of 1, is taken down and up by stopping and starting its listener: the time from
the deciding check to the new ruleset being live. The last line printed is one JSON object.
"""

import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import redis

from lab import GUIDE_PORTS, PRIMARY_ADDRESS, SECONDARY_ADDRESS, Lab, unique_test_prefix
from runner.stack import Stack

RUN_SECONDS = 75
SERVERS = 1000
TICK = os.sysconf("SC_CLK_TCK")

SETUP = """
from clusters import services
from clusters.models import ConfigGeneration, RealServer, VirtualService
ports = "{ports}"
VirtualService.objects.bulk_create([
    VirtualService(label=f"service {{i}}", vip=f"10.{{i // 250}}.{{i % 250}}.1", ports=ports,
                   check_type="connect", check_interval=30, check_timeout=5, failure_count=10)
    for i in range(1, {servers} + 1)])
RealServer.objects.bulk_create([
    RealServer(service=vs, label="primary", ip="{primary}")
    for vs in VirtualService.objects.all()])
probe = VirtualService(label="probe", vip="198.51.100.200", ports="12000", check_type="connect",
                       check_interval=2, check_timeout=1, failure_count=1)
probe.full_clean(); services.do_save_service(probe, "bench")
rs = RealServer(service=probe, label="secondary", ip="{secondary}")
rs.full_clean(); services.do_save_real_server(rs, "bench")
"""


def cpu_seconds(pid):
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(f) for f in fields[11:15]) / TICK  # utime stime cutime cstime


def percentile(values, fraction):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def detect_to_apply(client, lab, trials=4):
    """Stop/start the secondary's listener; time transition -> ruleset live."""
    timings = []
    for trial in range(trials):
        if trial % 2 == 0:
            lab.stop_listener("secondary")
        else:
            lab.start_listener("secondary")
        deadline = time.time() + 20
        transition = None
        while time.time() < deadline:
            raw = client.get("lbadmin:health:last-transition")
            if raw and (transition := json.loads(raw))["event"] == ("down", "up")[trial % 2] \
                    and transition["at"] > deadline - 20:
                status = json.loads(client.get("lbadmin:dataplane:status") or "{}")
                if status.get("at", 0) >= transition["at"]:
                    timings.append((status["at"] - transition["at"]) * 1000)
                    break
            time.sleep(0.02)
        else:
            raise RuntimeError(f"no transition or apply within 20 s: {transition}")
    return timings


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def main():
    signal.signal(signal.SIGTERM, _interrupt)
    work = Path(tempfile.mkdtemp(prefix="lbadmin-bench-checks-"))
    lab = Lab(unique_test_prefix())
    try:
        lab.up()
        with Stack(work, lab, https_port=19446, listen_address="127.0.0.1") as stack:
            stack.wait_for_workers()
            env = {**os.environ, **stack.env}
            subprocess.run([sys.executable, "manage.py", "shell", "-c", SETUP.format(
                ports=",".join(map(str, GUIDE_PORTS)), servers=SERVERS, primary=PRIMARY_ADDRESS,
                secondary=SECONDARY_ADDRESS)], cwd=ROOT, env=env, check=True,
                capture_output=True)
            client = redis.Redis(unix_socket_path=str(stack.redis_socket))
            time.sleep(35)  # every server gets its first check, spread over one interval
            client.delete("lbadmin:checks:lateness")
            pids = [stack.processes[name].pid for name in ("worker-checks", "beat")]
            cpu_before, started = sum(cpu_seconds(p) for p in pids), time.time()
            time.sleep(RUN_SECONDS)
            cpu = (sum(cpu_seconds(p) for p in pids) - cpu_before) / (time.time() - started)
            lateness = [float(x) for x in client.lrange("lbadmin:checks:lateness", 0, -1)]
            timings = detect_to_apply(client, lab)
    finally:
        lab.down()
        shutil.rmtree(work, ignore_errors=True)
    expected = (SERVERS * RUN_SECONDS / 30) + RUN_SECONDS / 2
    print(f"machine: {os.cpu_count()} cores; {SERVERS} real servers x {len(GUIDE_PORTS)} ports "
          f"every 30 s + 1 every 2 s, {RUN_SECONDS} s measured")
    print(f"  checks run: {len(lateness)} (expected about {expected:.0f})")
    print(f"  lateness against the schedule: median {statistics.median(lateness) * 1000:.0f} ms, "
          f"p99 {percentile(lateness, 0.99) * 1000:.0f} ms, max {max(lateness) * 1000:.0f} ms")
    print(f"  CPU of the checks worker and beat: {cpu * 100:.1f}% of one core")
    print(f"  deciding check to ruleset live: {', '.join(f'{t:.0f}' for t in timings)} ms")
    print(json.dumps({
        "check_lateness_p99_s": round(percentile(lateness, 0.99), 3),
        "checks_cpu_percent": round(cpu * 100, 1),
        "detect_to_apply_ms": round(statistics.median(timings), 1),
        "checks_run": len(lateness),
        "check_lateness_median_s": round(statistics.median(lateness), 3),
    }))


if __name__ == "__main__":
    main()
