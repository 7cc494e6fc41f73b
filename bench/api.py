"""The automation surface's speed (issue 16), on a stack of its own (root, network namespaces),
through the real gunicorn over HTTPS (the lab's forwarded port), as a script on the host would
call it:

1. One API v2 batch (`POST /api/v2/`, Basic + X_LB_APIKEY) adding 1,000 Layer 4 virtual
   services (7 ports each, on 100 VIPs) with 2 real servers each: 3,000 lbcli calls in one
   transaction, one configuration generation, one revision, one apply. Timed from the request
   until that generation is live in the kernel (the dataplane worker's applied generation),
   target < 10 s; the answer's own time and the apply's are printed beside it.
2. Single REST calls (`/api/v1/`, Bearer key, one keep-alive connection): Drain/Online of one
   real server in turn, each a whole change (form, audit line, generation, revision, apply
   request) — `rest_calls_per_s`; reads (GET one virtual service) are printed beside it. If
   the REST API is not there, single API v2 calls are measured instead (said so).

The last line is one JSON object: {"api_v2_batch_1000_services_s": …, "rest_calls_per_s": …}.
Run: .venv/bin/python -m bench.api
"""

import base64
import http.client
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")

from lab import PRIMARY_ADDRESS, SECONDARY_ADDRESS  # noqa: E402
from tests.conftest import running_stack  # noqa: E402
from tests.stacks import WebUISession, in_stack, wait_for  # noqa: E402

SERVICES = 1000
SINGLE_CALLS = 200

NEW_KEY = """
from django.contrib.auth import get_user_model
from api import keys
from api.models import ApiKey
user = get_user_model().objects.get(username="loadbalancer")
print(keys.do_create_key(ApiKey(user=user, name="bench"), by=user))
"""
STATE = """
from clusters.models import ConfigGeneration, RealServer, VirtualService
from clusters.runtime import read_status
from maintenance.models import Revision
generation = ConfigGeneration.current()
status = read_status()
print(generation, status.state_for(generation), status.milliseconds,
      VirtualService.objects.count(), RealServer.objects.count(), Revision.objects.count())
"""
FIRST_SERVER = """
from clusters.models import RealServer
server = RealServer.objects.order_by("id").first()
print(server.pk, server.service_id)
"""


def batch_calls(count):
    calls = []
    for i in range(count):
        label = f"service {i:04}"
        calls.append({"action": "add-vip", "vip": label, "ip": f"198.51.100.{101 + i // 10}",
                      "ports": ",".join(str(20000 + (i % 10) * 10 + k) for k in range(7)),
                      "forwarding": "masq", "check_type": "on",
                      "fallback_ip": SECONDARY_ADDRESS, "fallback_masq": "on"})
        calls.append({"action": "add-rip", "vip": label, "rip": "primary",
                      "ip": PRIMARY_ADDRESS})
        calls.append({"action": "add-rip", "vip": label, "rip": "secondary",
                      "ip": SECONDARY_ADDRESS})
    return calls


class Client(WebUISession):
    """Keep-alive HTTPS to the stack's gunicorn (reconnecting once if it closed the idle
    connection); `call` answers (status, body bytes)."""

    def __init__(self, port):
        super().__init__(port)
        # the batch's answer may take longer than a page's 30 s on a loaded machine
        self.connection = http.client.HTTPSConnection("127.0.0.1", port, context=self.context,
                                                      timeout=600)

    def call(self, method, path, body=None, headers=None):
        status, text, _ = self.request(method, path, body=body, headers=headers)
        return status, text.encode()


def state(stack):
    generation, applied, milliseconds, services, servers, revisions = \
        in_stack(stack, STATE).split()
    return int(generation), applied, milliseconds, int(services), int(servers), int(revisions)


def v2_headers(stack, key):
    basic = base64.b64encode(f"loadbalancer:{stack.generated_password}".encode()).decode()
    return {"Authorization": f"Basic {basic}", "Content-Type": "application/json",
            "X_LB_APIKEY": base64.b64encode(key.encode()).decode()}


def measure_batch(stack, client, key):
    body = json.dumps({"lbcli": batch_calls(SERVICES)}).encode()
    before = state(stack)
    started = time.monotonic()
    status, answer = client.call("POST", "/api/v2/", body, v2_headers(stack, key))
    answered = time.monotonic() - started
    assert status == 200, (status, answer[:2000])
    statuses = {entry["status"] for entry in
                json.loads(answer)["lbapi"][0]["itteration"][0]["lbcli"]}
    assert statuses == {"success"}, statuses
    generation = before[0] + 1

    def live():
        now = state(stack)
        return now if now[0] == generation and now[1] == "applied" else None

    after = wait_for(live, 300, every=0.2)
    applied = time.monotonic() - started
    assert after, state(stack)
    assert after[3:5] == (SERVICES, 2 * SERVICES), after
    assert after[5] == before[5] + 1, (before, after)  # one revision for the whole batch
    print(f"API v2 batch: {len(body) / 1e6:.2f} MB, {3 * SERVICES:,} calls; answered in "
          f"{answered:.2f} s; generation {generation} live {applied:.2f} s after the request "
          f"(its apply {after[2]} ms); one revision, one generation", flush=True)
    return applied


def measure_rest(stack, client, key):
    server, service = in_stack(stack, FIRST_SERVER).split()
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    status, _ = client.call("GET", f"/api/v1/virtual-services/{service}", headers=headers)
    if status == 404:
        return None
    assert status == 200, status
    reads = []
    for _ in range(SINGLE_CALLS):
        started = time.perf_counter()
        status, _ = client.call("GET", f"/api/v1/virtual-services/{service}", headers=headers)
        reads.append(time.perf_counter() - started)
        assert status == 200, status
    started = time.perf_counter()
    for i in range(SINGLE_CALLS):
        action = "drain" if i % 2 == 0 else "online"
        status, answer = client.call("POST", f"/api/v1/real-servers/{server}/{action}",
                                     headers=headers, body=b"")
        assert status == 200, (status, answer[:500])
    writes = SINGLE_CALLS / (time.perf_counter() - started)
    print(f"REST API, one keep-alive connection: {writes:.1f} Drain/Online calls/s (each a "
          f"whole change); reads (GET one virtual service) {len(reads) / sum(reads):.1f}/s, "
          f"median {1000 * statistics.median(reads):.1f} ms", flush=True)
    return writes


def measure_v2_single(stack, client, key):
    headers = v2_headers(stack, key)
    started = time.perf_counter()
    for i in range(SINGLE_CALLS):
        action = "drain" if i % 2 == 0 else "online"
        body = json.dumps({"lbcli": [{"action": action, "vip": "service 0000",
                                      "rip": "primary"}]}).encode()
        status, answer = client.call("POST", "/api/v2/", body, headers)
        assert status == 200, (status, answer[:500])
    rate = SINGLE_CALLS / (time.perf_counter() - started)
    print(f"no REST API here: single API v2 calls (Drain/Online, Basic password checked "
          f"each time) {rate:.1f}/s", flush=True)
    return rate


def main():
    with running_stack() as stack:
        key = in_stack(stack, NEW_KEY).splitlines()[-1]
        client = Client(stack.https_port)
        print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}",
              flush=True)
        batch_s = measure_batch(stack, client, key)
        rest = measure_rest(stack, client, key)
        if rest is None:
            rest = measure_v2_single(stack, client, key)
        print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())} "
              f"({os.cpu_count()} cores)", flush=True)
        print(json.dumps({"api_v2_batch_1000_services_s": round(batch_s, 2),
                          "rest_calls_per_s": round(rest, 1)}))


if __name__ == "__main__":
    main()
