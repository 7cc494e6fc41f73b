"""Run one health check of one real server, by the service's check type.

Network checks originate in the caller's network namespace: the checks worker is started in
the appliance's, where the real servers are reachable.
"""

import asyncio
import contextlib
import hashlib
import json
import os
import ssl
import subprocess
from dataclasses import dataclass, field

from . import scripts

ANSWER_CAP = 64 * 1024  # bytes of an HTTP answer read for Negotiate checks


@dataclass
class CheckResult:
    ok: bool
    message: str
    output: str = ""
    ports: dict = field(default_factory=dict)  # port -> "ok" / the error, for the details view


@dataclass(frozen=True)
class Target:
    """What a check needs, read from the database by the task (plain values, no models)."""

    check_type: str
    vip: str
    virtual_port: int  # the service's first port, as ldirectord passes it
    ports: tuple  # the ports to check (real server port, or every port of the service)
    ip: str
    real_port: int | None
    timeout: int
    script: str = ""
    request: str = "/"
    host: str = ""
    expect: str = ""

    def fingerprint(self):
        """What this check looks at, as a short digest: when it changes, the check is a new
        one (its failures are counted afresh; a down server stays down until it passes).
        Only what the check type uses counts — a ping looks at the address alone, Connect at
        the address and ports — and never the timeout, interval or Failure Count, which say
        how the same thing is checked."""
        what = [self.check_type, self.ip]
        if self.check_type == "external":
            what += [hashlib.sha256(self.script.encode()).hexdigest(), self.vip,
                     self.virtual_port, self.real_port or 0]
        elif self.check_type == "connect":
            what += [list(self.ports)]
        elif self.check_type in ("http", "https"):
            what += [list(self.ports), self.request, self.host or self.vip, self.expect.strip()]
        return hashlib.sha256(json.dumps(what).encode()).hexdigest()[:16]


def run(target):
    if target.check_type == "external":
        outcome = scripts.run_script(target.script, [
            target.vip, target.virtual_port, target.ip, target.real_port or 0], target.timeout)
        return CheckResult(outcome.ok, outcome.message, outcome.output)
    if target.check_type == "ping":
        return ping(target)
    return asyncio.run(_network_check(target))


async def _network_check(target):
    try:
        return await asyncio.wait_for(_by_type(target), target.timeout)
    except TimeoutError:
        return CheckResult(False, f"no answer within the {target.timeout} s timeout")


async def _by_type(target):
    if target.check_type == "connect":
        return await connect(target)
    return await negotiate(target, tls=target.check_type == "https")


async def _connect_one(ip, port):
    try:
        _reader, writer = await asyncio.open_connection(ip, port)
    except OSError as error:
        # asyncio's words are "Connect call failed ('192.0.2.110', 12000)": the errno's are
        # the reason ("Connection refused", "No route to host")
        return os.strerror(error.errno) if error.errno else \
            (error.strerror or type(error).__name__)
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return "ok"


async def connect(target):
    """Healthy only if every port accepts a TCP connection (all tried at once)."""
    results = await asyncio.gather(*(_connect_one(target.ip, p) for p in target.ports))
    ports = dict(zip(target.ports, results, strict=True))
    failed = {p: r for p, r in ports.items() if r != "ok"}
    if failed:
        first = next(iter(failed))
        return CheckResult(False, f"port {first}: {failed[first]}", ports=ports)
    return CheckResult(True, f"{len(ports)} port(s) accept connections", ports=ports)


async def negotiate(target, tls):
    """GET the request path; healthy on the expected status or text (default: 2xx or 3xx)."""
    port = target.ports[0]
    context = None
    if tls:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE  # real servers often have their own certificates
    try:
        reader, writer = await asyncio.open_connection(target.ip, port, ssl=context)
    except (OSError, ssl.SSLError) as error:
        return CheckResult(False, f"port {port}: {error}", ports={port: str(error)})
    host = target.host or target.vip
    writer.write(f"GET {target.request} HTTP/1.0\r\nHost: {host}\r\n"
                 f"User-Agent: lbadmin-health-check\r\n\r\n".encode())
    body = b""
    while len(body) < ANSWER_CAP and (chunk := await reader.read(ANSWER_CAP - len(body))):
        body += chunk  # HTTP/1.0: the server closes when done; a read returns what has come
    writer.close()
    text = body.decode(errors="replace")
    status_line = text.split("\r\n", 1)[0]
    parts = status_line.split()
    status = parts[1] if len(parts) > 1 and parts[0].startswith("HTTP/") else ""
    if not status:
        return CheckResult(False, f"port {port}: not an HTTP answer", text[:2000],
                           {port: "not HTTP"})
    expect = target.expect.strip()
    if expect.isdigit():
        ok, wanted = status == expect, f"status {expect}"
    elif expect:
        ok, wanted = expect in text, f"the text “{expect}”"
    else:
        ok, wanted = status[:1] in ("2", "3"), "a 2xx or 3xx status"
    message = f"{status_line} ({'has' if ok else 'expected'} {wanted})"
    return CheckResult(ok, message, text[:2000], {port: status_line})


def ping(target):
    result = subprocess.run(["ping", "-c", "1", "-W", str(target.timeout), "-n", target.ip],
                            capture_output=True, text=True, timeout=target.timeout + 2)
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    return CheckResult(result.returncode == 0,
                       "echo reply" if result.returncode == 0 else "no echo reply",
                       "\n".join(lines[-2:]))
