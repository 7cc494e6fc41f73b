"""Data-plane benchmarks, measured side by side in one run on one lab (`make bench`).

1. New TCP connections per second, short connections (one HTTP/1.0 request each), from 8
   client addresses, through lbadmin's VIP, straight to the primary (routed through the same
   lb namespace, no NAT), and through HAProxy in TCP mode in the lb namespace. Load generator:
   bench/connrate.c (epoll, compiled here); server: Debian's nginx in the primary namespace
   (1 worker); HAProxy: Debian's haproxy, 1 thread. Keep-alive request rates with wrk are
   printed beside them. The three paths alternate, 3 rounds of 3 s each; medians.
2. 1,000 virtual services x 7 ports x 2 real servers in a database, applied in a namespace of
   their own by the dataplane worker's action: the whole ruleset from nothing, and one Halt
   among them (database read, render, difference, nft, conntrack cut; median of 7).
3. The time from a Halt POSTed to the WebUI (the real stack: gunicorn, Redis, the dataplane
   worker) to the first new connection that lands on the fallback server (median of 5).

The last line printed is one JSON object with every figure.
"""

import http.cookiejar
import json
import os
import re
import shutil
import signal
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
WORK = Path(tempfile.mkdtemp(prefix="lbadmin-bench-"))
os.environ.setdefault("LBADMIN_DATA_DIR", str(WORK / "data"))

from pyroute2 import netns

from clusters.dataplane.desired import Desired, Server, Service
from clusters.dataplane.render import full_script, render
from lab import (
    PRIMARY_ADDRESS,
    SECONDARY_ADDRESS,
    VIP,
    Lab,
    remove_namespace,
    unique_test_prefix,
)
from runner.stack import Stack

HAPROXY_VIP = "198.51.100.101"
CLIENTS = [f"198.51.100.{n}" for n in range(11, 83)]  # 72: 8 per phase, never reused
SECONDS = 3
ROUNDS = 3
HALT_TRIALS = 5
CONCURRENCY = 64


def run(*command, **kwargs):
    return subprocess.run(command, check=True, capture_output=True, text=True, **kwargs)


def inside(lab, role, *command, **kwargs):
    return run(*lab.exec_prefix(role), *command, **kwargs)


def build_connrate():
    binary = WORK / "connrate"
    run("gcc", "-O2", "-o", str(binary), str(ROOT / "bench" / "connrate.c"))
    return binary


def start_nginx(lab):
    conf = WORK / "nginx.conf"
    conf.write_text(f"""
worker_processes 1;
pid {WORK}/nginx.pid;
error_log {WORK}/nginx-error.log;
daemon off;
events {{ worker_connections 16384; }}
http {{
    access_log off;
    keepalive_requests 1000000;
    server {{ listen 80 backlog=8192; location / {{ return 200 "primary\\n"; }} }}
}}
""")
    return subprocess.Popen([*lab.exec_prefix("primary"), "nginx", "-c", str(conf)])


def start_haproxy(lab):
    conf = WORK / "haproxy.cfg"
    conf.write_text(f"""
global
    maxconn 8000
    nbthread 1
defaults
    mode tcp
    timeout connect 5s
    timeout client 30s
    timeout server 30s
frontend vip
    bind {HAPROXY_VIP}:80
    default_backend primary
backend primary
    server primary {PRIMARY_ADDRESS}:80
""")
    return subprocess.Popen([*lab.exec_prefix("lb"), "haproxy", "-db", "-f", str(conf)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def prepare_lab(lab):
    for address in CLIENTS:
        run("ip", "-n", lab.ns("client"), "addr", "add", f"{address}/24", "dev", "eth0")
    for address in (VIP, HAPROXY_VIP):
        run("ip", "-n", lab.ns("lb"), "addr", "add", f"{address}/24", "dev", "eth1")
    for role in ("client", "lb", "primary"):
        # Timestamps without per-connection random offsets and the full port range in every
        # namespace, so reused 4-tuples meet TIME_WAIT with newer timestamps on all three
        # paths alike (DESIGN.md: short connections collapse otherwise).
        inside(lab, role, "sysctl", "-q", "-w", "net.ipv4.tcp_timestamps=2",
               "-w", "net.ipv4.ip_local_port_range=1024 65535")
    service = Service(id=1, vip=VIP, port_ranges=((80, 80),), protocols=("tcp",),
                      scheduler="wrr", persistence_timeout=None,
                      servers=(Server(1, PRIMARY_ADDRESS, None, 100, True, True, False),),
                      fallback=None)
    inside(lab, "lb", "nft", "-f", "-", input=full_script(render(Desired((service,)))))


def connection_rate(lab, connrate, host, sources):
    inside(lab, "lb", "conntrack", "-F")
    out = inside(lab, "client", str(connrate), host, "80", str(SECONDS), str(CONCURRENCY),
                 ",".join(sources)).stdout.split()
    completed, errors = int(out[0]), int(out[1])
    return completed / SECONDS, errors


def keepalive_rate(lab, host):
    out = inside(lab, "client", "wrk", "-t1", "-c32", f"-d{SECONDS}s",
                 f"http://{host}/").stdout
    return float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))


def bench_connections(lab):
    connrate = build_connrate()
    paths = {"vip": VIP, "direct": PRIMARY_ADDRESS, "haproxy": HAPROXY_VIP}
    rates = {name: [] for name in paths}
    errors = {name: 0 for name in paths}
    keepalive = {name: [] for name in paths}
    batches = iter(CLIENTS[i:i + 8] for i in range(0, len(CLIENTS), 8))
    for _round in range(ROUNDS):
        for name, host in paths.items():
            rate, failed = connection_rate(lab, connrate, host, next(batches))
            rates[name].append(rate)
            errors[name] += failed
            keepalive[name].append(keepalive_rate(lab, host))
    short = {name: statistics.median(values) for name, values in rates.items()}
    alive = {name: statistics.median(values) for name, values in keepalive.items()}
    for name in paths:
        print(f"  {name:8} short connections {short[name]:9.0f}/s (errors {errors[name]}), "
              f"keep-alive {alive[name]:9.0f} req/s", flush=True)
    return short, alive


def bench_scale(prefix):
    """The dataplane worker's own action, apply_dataplane(), over a database of 1,000 services:
    database read, render, difference, nft transaction, cutting the halted pair."""
    import django
    from django.core.management import call_command

    os.environ["DJANGO_SETTINGS_MODULE"] = "appliance.settings"
    django.setup()
    from clusters import services
    from clusters.dataplane import apply
    from clusters.models import RealServer, VirtualService

    call_command("migrate", verbosity=0)
    redis = subprocess.Popen(["redis-server", "--port", "0", "--unixsocket",
                              os.environ["LBADMIN_DATA_DIR"] + "/redis.sock", "--save", ""],
                             stdout=subprocess.DEVNULL)
    time.sleep(0.5)
    VirtualService.objects.bulk_create([
        VirtualService(label=f"service {i}", vip=f"10.{i // 250}.{i % 250}.1",
                       ports="12000,12100,12200,12300,12301,12950,12800",
                       fallback_ip=SECONDARY_ADDRESS, fallback_masq=True)
        for i in range(1, 1001)])
    RealServer.objects.bulk_create([
        RealServer(service=vs, label=f"server {k}", ip=f"192.0.2.{110 + k}")
        for vs in VirtualService.objects.all() for k in range(2)])
    namespace = f"{prefix}scale"
    run("ip", "netns", "add", namespace)
    netns.pushns(namespace)
    try:
        started = time.perf_counter()
        result = apply.apply_dataplane(full=True)
        full_ms = (time.perf_counter() - started) * 1000
        assert result["ok"], result
        changes = []
        for server in RealServer.objects.order_by("id")[100:800:100]:
            services.do_set_state(server, "halt", "bench")
            started = time.perf_counter()
            result = apply.apply_dataplane()
            changes.append((time.perf_counter() - started) * 1000)
            assert result["ok"] and result["mode"] == "difference", result
    finally:
        netns.popns()
        remove_namespace(namespace)
        redis.terminate()
    change_ms = statistics.median(changes)
    print(f"  1,000 services x 7 ports x 2 servers: full apply {full_ms:.0f} ms, "
          f"one Halt {change_ms:.1f} ms (median of {len(changes)}: "
          f"{', '.join(f'{c:.0f}' for c in changes)}; database read, render, difference, "
          f"nft, conntrack cut, as the dataplane worker does it)", flush=True)
    return full_ms, change_ms


PROBE = """
import socket, sys, time
seen_primary = False
give_up = time.time() + 20
while time.time() < give_up:
    try:
        with socket.create_connection((sys.argv[1], 12000), timeout=0.5) as s:
            name = s.makefile().readline().split(" ")[0]
    except OSError:
        name = "error"
    if name == "primary" and not seen_primary:
        seen_primary = True
        print("ready", flush=True)
    if name == "secondary" and seen_primary:
        print(time.time(), flush=True)
        break
    time.sleep(0.001)
else:
    print("timeout", flush=True)
"""

SETUP = """
from clusters import services
from clusters.models import RealServer, VirtualService
vs = VirtualService(label="VNA", vip="{vip}", ports="12000,12100,12200,12300,12301,12950,12800",
                    fallback_ip="{secondary}", fallback_port=0, fallback_masq=True)
vs.full_clean(); services.do_save_service(vs, "bench")
rs = RealServer(service=vs, label="PrimaryCluster", ip="{primary}")
rs.full_clean(); services.do_save_real_server(rs, "bench")
print(rs.id)
"""


def webui_session(base, password):
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # the appliance's self-signed certificate
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar),
                                         urllib.request.HTTPSHandler(context=context))
    login = f"{base}/lbadmin/login/"
    page = opener.open(login).read().decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    opener.open(urllib.request.Request(login, data=urllib.parse.urlencode({
        "username": "loadbalancer", "password": password, "csrfmiddlewaretoken": token,
    }).encode(), headers={"Referer": login}))

    def post(path, fields):
        csrf = next(c.value for c in jar if c.name == "lbadmin_csrftoken")
        request = urllib.request.Request(
            f"{base}{path}", data=urllib.parse.urlencode(fields).encode(),
            headers={"X-CSRFToken": csrf, "Referer": f"{base}/lbadmin/", "HX-Request": "true"})
        return opener.open(request).status

    return post


def bench_halt(lab):
    data = WORK / "stack"
    port = 19443
    with Stack(data, lab, https_port=port, listen_address="127.0.0.1") as stack:
        stack.wait_for_workers()
        env = {**os.environ, **stack.env}
        server_id = run(sys.executable, "manage.py", "shell", "-c",
                        SETUP.format(vip=VIP, primary=PRIMARY_ADDRESS,
                                     secondary=SECONDARY_ADDRESS),
                        cwd=ROOT, env=env).stdout.split()[-1]
        post = webui_session(f"https://127.0.0.1:{port}", stack.generated_password)
        state_url = f"/lbadmin/overview/real-server/{server_id}/state/"
        timings = []
        for _trial in range(HALT_TRIALS):
            probe = subprocess.Popen([*lab.exec_prefix("client"), sys.executable, "-c", PROBE,
                                      VIP], stdout=subprocess.PIPE, text=True)
            ready = probe.stdout.readline().strip()
            if ready != "ready":
                raise RuntimeError(f"the VNA service never answered from the primary: {ready}")
            started = time.time()
            assert post(state_url, {"state": "halt"}) == 200
            answer = probe.stdout.readline().strip()
            if answer == "timeout":
                raise RuntimeError("no connection reached the fallback within 20 s of the Halt")
            landed = float(answer)
            probe.wait()
            timings.append((landed - started) * 1000)
            post(state_url, {"state": "online"})
            time.sleep(1)
    halt_ms = statistics.median(timings)
    print(f"  Halt in the WebUI to first connection on the fallback: {halt_ms:.0f} ms "
          f"(median of {len(timings)}: {', '.join(f'{t:.0f}' for t in timings)})", flush=True)
    return halt_ms


def _interrupt(signum, frame):
    raise KeyboardInterrupt  # so `finally` stops the stack and removes the lab


def main():
    signal.signal(signal.SIGTERM, _interrupt)
    prefix = unique_test_prefix()  # a test-style prefix: `make lab-down` removes leftovers
    lab = Lab(prefix)
    nginx = haproxy = None
    try:
        lab.up()
        prepare_lab(lab)
        nginx, haproxy = start_nginx(lab), start_haproxy(lab)
        time.sleep(1)
        print(f"machine: {os.cpu_count()} cores, kernel {os.uname().release}", flush=True)
        print("new connections per second (short: one request per connection):", flush=True)
        short, alive = bench_connections(lab)
        print("rule sets:", flush=True)
        full_ms, change_ms = bench_scale(prefix)
        print("failover:", flush=True)
        halt_ms = bench_halt(lab)
    finally:
        for process in (nginx, haproxy):
            if process:
                process.terminate()
                process.wait()
        lab.down()
        shutil.rmtree(WORK, ignore_errors=True)
    print(json.dumps({
        "vip_vs_direct_conn_rate_ratio": round(short["vip"] / short["direct"], 3),
        "vip_vs_haproxy_conn_rate_ratio": round(short["vip"] / short["haproxy"], 3),
        "full_apply_ms_1000_services": round(full_ms, 1),
        "change_apply_ms_1000_services": round(change_ms, 1),
        "halt_to_fallback_ms": round(halt_ms, 1),
        "conn_rate_per_s": {name: round(rate) for name, rate in short.items()},
        "keepalive_req_per_s": {name: round(rate) for name, rate in alive.items()},
    }))


if __name__ == "__main__":
    main()
