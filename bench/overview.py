"""System Overview under load (issue 11): 1,000 virtual services, 20 viewers (`make bench`).

The real stack (gunicorn over HTTPS as `make demo` runs it, Redis, the three workers, beat)
over a lab, reached through the lab's forwarded port as a browser on the host reaches it. The
database holds the guide's VNA and 999 more services, two real servers each (the lab's
primary and secondary; "No checks, Always On", so the health checks add no load of their own),
all applied by the dataplane worker.

20 viewers, each with its own session and keep-alive HTTPS connection, do what the page's htmx
does, starting at random moments in the first 5 s: load System Overview, poll the Layer 4
table every 5 s with the digest of what it shows (every 1 s while a change is applying, as the
page does) and the Services panel every 5 s, and load the whole page again every 30 s (a user
coming back to it). Five of them have typed "VNA" into the search box. Meanwhile an
administrator halts and brings back a real server of a service on the first page every 10 s,
so polls also meet changes (200 with the table, an apply, "applying…", the banner's new apply
time) and not only 204s.

Printed: per kind of request the median and p95 latency, the share of polls answered 204, and
the Services panel alone with nobody else polling. The last line is one JSON object; its
`overview_p95_ms_1000_services_20_viewers` is the p95 of every request of the run (pages and
partials), `services_panel_ms` the median of the Services panel's polls under that load.
Before this work (issue 11's measurements): the Services panel took ~1.0 s on every poll (a
broadcast ping waiting out its timeout), and 20 viewers of 200 services saw p95 1.1 s for the
page and 2.3 s for the panel.
"""

import html
import json
import os
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
WORK = Path(tempfile.mkdtemp(prefix="lbadmin-bench-overview-"))

from lab import PRIMARY_ADDRESS, SECONDARY_ADDRESS, VIP, Lab, unique_test_prefix
from runner.stack import Stack
from tests.stacks import WebUISession

SERVICES = 1000
VIEWERS = 20
SEARCHERS = 5  # of the viewers, those who searched for "VNA"
SECONDS = 60
POLL = 5.0  # the Layer 4 table's and the Services panel's poll
POLL_APPLYING = 1.0  # the Layer 4 table's, while a change is applying
RELOAD = 30.0  # a viewer loads the whole page again
CHANGE_EVERY = 10.0

POPULATE = """
from clusters import services
from clusters.models import RealServer, VirtualService
from lab import GUIDE_PORTS
others = []
for i in range(1, {services}):
    vip = f"198.51.100.{{101 + (i - 1) // 10}}"
    base = 20000 + ((i - 1) % 10) * 10
    others.append(VirtualService(label=f"service {{i:04}}", vip=vip,
                                 ports=",".join(str(base + k) for k in range(7)),
                                 fallback_ip="{secondary}", fallback_masq=True))
VirtualService.objects.bulk_create(others)
RealServer.objects.bulk_create([
    RealServer(service=vs, label=label, ip=ip) for vs in VirtualService.objects.all()
    for label, ip in (("primary", "{primary}"), ("secondary", "{secondary}"))])
vna = VirtualService(label="VNA", vip="{vip}", ports=",".join(map(str, GUIDE_PORTS)),
                     fallback_ip="{secondary}", fallback_port=0, fallback_masq=True)
vna.full_clean(); services.do_save_service(vna, "bench")
server = RealServer(service=vna, label="PrimaryCluster", ip="{primary}")
server.full_clean(); services.do_save_real_server(server, "bench")
toggled = RealServer.objects.get(service__label="service 0001", label="secondary")
print(toggled.id)
"""


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def poll_of(text):
    """The Layer 4 table's poll: its address (with the digest) and its interval."""
    match = re.search(r'<div id="layer4" hx-get="([^"]+)" hx-trigger="every (\d+)s"', text)
    return html.unescape(match.group(1)), float(match.group(2))


class Results:
    def __init__(self):
        self.lock = threading.Lock()
        self.seconds = {}  # kind -> [seconds]
        self.statuses = {}  # kind -> {status: count}
        self.errors = []

    def add(self, kind, status, seconds):
        with self.lock:
            self.seconds.setdefault(kind, []).append(seconds)
            counts = self.statuses.setdefault(kind, {})
            counts[status] = counts.get(status, 0) + 1


def viewer(number, port, password, results, stop, started):
    browser = WebUISession(port)
    browser.log_in(password)
    started.wait()
    rng = random.Random(number)
    time.sleep(rng.uniform(0, POLL))
    search = number < SEARCHERS
    page_path = "/lbadmin/?q=VNA" if search else "/lbadmin/"
    try:
        status, text, seconds = browser.request("GET", page_path)
        results.add("page", status, seconds)
        poll_url, interval = poll_of(text)
        now = time.monotonic()
        next_table, next_services, next_page = now + interval, now + 0.1, now + RELOAD
        while not stop.is_set():
            due = min(next_table, next_services, next_page)
            if stop.wait(max(0.0, due - time.monotonic())):
                break
            now = time.monotonic()
            if now >= next_page:
                status, text, seconds = browser.request("GET", page_path)
                results.add("page", status, seconds)
                poll_url, interval = poll_of(text)
                next_page, next_table = now + RELOAD, now + interval
            elif now >= next_table:
                status, text, seconds = browser.htmx("GET", poll_url, "layer4")
                results.add("layer4", status, seconds)
                if status == 200:
                    poll_url, interval = poll_of(text)
                next_table = now + interval
            else:
                status, _text, seconds = browser.htmx("GET", "/lbadmin/overview/services/",
                                                      "service-status")
                results.add("services", status, seconds)
                next_services = now + POLL
    except Exception as error:  # counted, and the run goes on with the others
        results.errors.append(f"viewer {number}: {type(error).__name__}: {error}")
    finally:
        browser.close()


def administrator(port, password, server_id, stop, started, results):
    browser = WebUISession(port)
    browser.log_in(password)
    browser.request("GET", "/lbadmin/")
    started.wait()
    state = "halt"
    while not stop.wait(CHANGE_EVERY):
        status, _, seconds = browser.htmx(
            "POST", f"/lbadmin/overview/real-server/{server_id}/state/", "layer4",
            body=urllib.parse.urlencode({"state": state}))
        results.add("state change", status, seconds)
        state = "online" if state == "halt" else "halt"
    browser.close()


def wait_until_applied(browser, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status, text, _ = browser.htmx("GET", "/lbadmin/overview/apply-status/", "apply-status")
        if status == 286:
            if "Applied:" not in text:
                raise RuntimeError(f"the apply did not succeed: {text}")
            return
        time.sleep(0.5)
    raise RuntimeError("the 1,000 services were not applied in time")


def quiet_services_panel(port, password, count=20):
    browser = WebUISession(port)
    browser.log_in(password)
    browser.htmx("GET", "/lbadmin/overview/services/", "service-status")
    timings = []
    for _ in range(count):
        status, text, seconds = browser.htmx("GET", "/lbadmin/overview/services/",
                                             "service-status")
        if status != 200 or text.count("answering") != 4:
            raise RuntimeError(f"the Services panel does not show every worker: {text}")
        timings.append(seconds)
    browser.close()
    return statistics.median(timings) * 1000


def p95(values):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def _interrupt(signum, frame):
    raise KeyboardInterrupt  # so `finally` stops the stack and removes the lab


def main():
    signal.signal(signal.SIGTERM, _interrupt)
    lab = Lab(unique_test_prefix())  # a test-style prefix: `make lab-down` removes leftovers
    port = free_port()
    try:
        lab.up()
        with Stack(WORK / "stack", lab, https_port=port, listen_address="127.0.0.1") as stack:
            stack.wait_for_workers()
            env = {**os.environ, **stack.env}
            server_id = subprocess.run(
                [sys.executable, "manage.py", "shell", "-c", POPULATE.format(
                    services=SERVICES, vip=VIP, primary=PRIMARY_ADDRESS,
                    secondary=SECONDARY_ADDRESS)],
                cwd=ROOT, env=env, check=True, capture_output=True, text=True,
            ).stdout.split()[-1]
            first = WebUISession(port)
            first.log_in(stack.generated_password)
            wait_until_applied(first)
            _status, page, _ = first.request("GET", "/lbadmin/?q=VNA")
            first.close()
            if 'data-service="VNA"' not in page or f"{SERVICES} virtual services" not in page:
                raise RuntimeError("the overview does not show the 1,000 services")
            quiet_ms = quiet_services_panel(port, stack.generated_password)
            print(f"machine: {os.cpu_count()} cores, kernel {os.uname().release}; "
                  f"{SERVICES} services x 7 ports x 2 real servers, {VIEWERS} viewers, "
                  f"{SECONDS} s", flush=True)

            results, stop, started = Results(), threading.Event(), threading.Event()
            threads = [threading.Thread(target=viewer, args=(
                n, port, stack.generated_password, results, stop, started))
                for n in range(VIEWERS)]
            threads.append(threading.Thread(target=administrator, args=(
                port, stack.generated_password, server_id, stop, started, results)))
            for thread in threads:
                thread.start()
            time.sleep(2)  # every viewer logged in
            started.set()
            time.sleep(SECONDS)
            stop.set()
            for thread in threads:
                thread.join(timeout=60)
    finally:
        lab.down()
        shutil.rmtree(WORK, ignore_errors=True)

    if results.errors:
        raise RuntimeError("; ".join(results.errors))
    overview = [s for kind in ("page", "layer4", "services") for s in results.seconds[kind]]
    for kind in ("page", "layer4", "services", "state change"):
        values = results.seconds.get(kind, [])
        median = statistics.median(values) * 1000
        print(f"  {kind:12} {len(values):5} requests  median {median:6.1f} ms  p95 "
              f"{p95(values) * 1000:6.1f} ms  statuses {results.statuses[kind]}", flush=True)
    table = results.statuses["layer4"]
    unchanged = table.get(204, 0) / sum(table.values())
    print(f"  Layer 4 polls answered 204 (nothing changed): {unchanged:.0%}; Services panel "
          f"alone: {quiet_ms:.1f} ms (median of 20)", flush=True)
    print(json.dumps({
        "overview_p95_ms_1000_services_20_viewers": round(p95(overview) * 1000, 1),
        "services_panel_ms": round(statistics.median(results.seconds["services"]) * 1000, 1),
        "services_panel_p95_ms": round(p95(results.seconds["services"]) * 1000, 1),
        "services_panel_quiet_ms": round(quiet_ms, 1),
        "page_p95_ms": round(p95(results.seconds["page"]) * 1000, 1),
        "layer4_poll_p95_ms": round(p95(results.seconds["layer4"]) * 1000, 1),
        "layer4_polls_unchanged_share": round(unchanged, 3),
        "requests": len(overview),
    }))


if __name__ == "__main__":
    main()
