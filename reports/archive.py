"""Support > Support Download: one .tar.gz to attach to a bug report.

What it holds is listed in its MANIFEST. What it never holds: passwords or their hashes,
Django's secret key, private keys, the pairing secret, backup passphrases, the sealed pairing
password. Nothing here reads those on purpose (users are not in the configuration XML, the HA
pair is written without its secret); every member then passes `Scrubber`, which removes the
real values of the secrets this appliance has wherever they appear (a log line, say) and any
private key block or sealed (Fernet) token.
"""

import io
import json
import platform
import re
import subprocess
import sys
import tarfile
import time
from dataclasses import dataclass, field

import django
from django.conf import settings
from django.contrib.auth import get_user_model

from clusters.models import ApplyLogEntry
from clusters.tasks import compare_live_ruleset
from core import version
from core.runtime import service_status, supervisor_state
from core.workers import WorkerUnavailable, ask_dataplane
from ha.models import Pair
from healthchecks.models import HealthEvent
from maintenance import backup, certificate
from maintenance.restarts import service_rows
from network.models import SnmpSettings
from network.services import live_interfaces
from network.tasks import describe_routes

from . import service_logs

LOG_TAIL_BYTES = 512 * 1024  # of each service's log
APPLIES = 1000  # the newest applies
HEALTH_EVENTS = 1000  # the newest health-check transitions
PACKAGES = ("nftables", "keepalived", "conntrack", "conntrackd", "redis-server", "iputils-arping")
PAIR_HIDDEN = {"secret"}
REMOVED = "[removed]"
PRIVATE_KEY = re.compile(r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----.*?(-----END [A-Z0-9 ]*PRIVATE "
                         r"KEY-----|\Z)", re.DOTALL)
FERNET_TOKEN = re.compile(r"gAAAAA[A-Za-z0-9_=-]{40,}")
PASSWORD_SETTING = re.compile(r"((?:LBADMIN_PASSWORD|LBADMIN_GENERATED_PASSWORD|"
                              r"LBADMIN_SECRET_KEY|passphrase)\s*[=:]\s*)\S+", re.IGNORECASE)


class Scrubber:
    """Removes this appliance's secrets from text: the values themselves (the secret key,
    every password hash and its digest, the pairing secret) and whatever has their shape."""

    def __init__(self):
        values = {settings.SECRET_KEY, Pair.load().secret,
                  # the WebUI's key, line by line: found even without its PEM armour
                  *certificate.key_lines(settings.DATA_DIR),
                  # SNMP's community and v3 passphrases (snmpd logs nothing of them, but a
                  # configuration pasted into a log line would)
                  *SnmpSettings.load().secrets()}
        for encoded in get_user_model().objects.values_list("password", flat=True):
            values.add(encoded)
            values.update(part for part in encoded.split("$") if len(part) >= 16)
        self.values = sorted((value for value in values if value and len(value) >= 8),
                             key=len, reverse=True)

    def __call__(self, text):
        for value in self.values:
            text = text.replace(value, REMOVED)
        text = PRIVATE_KEY.sub(f"{REMOVED} (a private key)", text)
        text = FERNET_TOKEN.sub(f"{REMOVED} (a sealed value)", text)
        return PASSWORD_SETTING.sub(lambda match: match.group(1) + REMOVED, text)


@dataclass
class Archive:
    scrub: Scrubber
    members: list = field(default_factory=list)  # (name, what it is, bytes)

    def add(self, name, about, text):
        self.members.append((name, about, self.scrub(text).encode("utf-8")))

    def tar_gz(self, prefix):
        manifest = [f"lbadmin support archive, version {version.__version__}, made "
                    f"{time.strftime('%Y-%m-%d %H:%M:%S %Z')}", "",
                    "Never in it: passwords or their hashes, the secret key, private keys, "
                    "the pairing secret, backup passphrases, SNMP's community and "
                    "passphrases.", ""]
        manifest += [f"{name:32} {len(data):>9} bytes  {about}"
                     for name, about, data in self.members]
        members = [("MANIFEST", ("\n".join(manifest) + "\n").encode())] + \
            [(name, data) for name, _about, data in self.members]
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
            for name, data in members:
                info = tarfile.TarInfo(f"{prefix}/{name}")
                info.size, info.mtime, info.mode = len(data), int(time.time()), 0o600
                tar.addfile(info, io.BytesIO(data))
        return buffer.getvalue()


def _json(value):
    return json.dumps(value, indent=2, default=str, sort_keys=True) + "\n"


def _packages():
    try:
        result = subprocess.run(
            ["dpkg-query", "-W", "-f", "${Package} ${Version} ${db:Status-Status}\\n",
             *PACKAGES], capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError) as error:
        return f"dpkg-query could not be run: {error}\n"
    return result.stdout + (f"\n(dpkg-query: {result.stderr.strip()})\n" if result.stderr else "")


def _versions():
    return (f"lbadmin {version.__version__}\nPython {sys.version.split()[0]}\n"
            f"Django {django.get_version()}\nKernel {platform.release()}\n"
            f"Machine {platform.machine()}\n\nDebian packages:\n{_packages()}")


def _ask(task, worker):
    """The dataplane worker's answer, or (once it has not answered) why, without asking
    again: each question would wait out the whole timeout."""
    if worker["down"]:
        return None, worker["down"]
    try:
        return ask_dataplane(task), ""
    except WorkerUnavailable as problem:
        worker["down"] = str(problem)
        return None, worker["down"]


def _ruleset(worker):
    comparison, why = _ask(compare_live_ruleset, worker)
    if comparison is None:
        return f"The live ruleset could not be read: {why}\n", ""
    verdict = "matches the configuration" if comparison["matches"] else \
        "DIFFERS from what the configuration asks for (drift)"
    return (f"# nft list table ip lbadmin — the live ruleset {verdict}\n"
            f"{comparison['live'] if comparison['live'] is not None else '(absent)'}\n",
            f"# what the configuration asks for\n{comparison['desired']}\n")


def _network(worker):
    if worker["down"]:
        return f"The interfaces could not be read: {worker['down']}\n"
    interfaces, why = live_interfaces()
    if interfaces is None:
        worker["down"] = why
        return f"The interfaces could not be read: {why}\n"
    routes, why = _ask(describe_routes, worker)
    return _json({"interfaces": interfaces,
                  "routes": routes if routes is not None else f"not read: {why}"})


def _services():
    status = service_status()
    state = supervisor_state()
    rows = [{"name": row.name, "running": row.running, "pid": row.pid, "version": row.version,
             "uptime_seconds": row.uptime, "automatic_restarts": row.auto_restarts,
             "restart_needed": row.restart_reason, "configured": row.configured,
             "last_restart": row.last_restart} for row in service_rows(state)]
    return _json({
        "supervisor": "answering" if state is not None else "not running (no state published)",
        "services": rows,
        "redis": "ok" if status.redis_ok else f"down: {status.redis_error}",
        "queues": {queue.name: queue.workers for queue in status.queues},
        "beat_heartbeat_age_seconds": status.beat_age,
    })


def _applies():
    lines = []
    for entry in ApplyLogEntry.objects.all()[:APPLIES]:
        result = "applied" if entry.ok else f"FAILED while {entry.stage}: {entry.error}"
        lines.append(f"{entry.at:%Y-%m-%d %H:%M:%S} generation {entry.generation} "
                     f"{entry.mode or '-'} statements={entry.statements} "
                     f"ms={entry.milliseconds} cut={entry.cut or '-'} {result}")
        lines += [f"    warning: {warning}" for warning in entry.warning_lines]
    return "\n".join(lines or ["No applies recorded."]) + "\n"


def _health_events():
    lines = []
    for event in HealthEvent.objects.all()[:HEALTH_EVENTS]:
        lines.append(f"{event.at:%Y-%m-%d %H:%M:%S} {event.event:5} {event.where}: "
                     f"{event.message}")
        lines += [f"    | {line}" for line in event.output.splitlines()]
    return "\n".join(lines or ["No health-check transitions recorded."]) + "\n"


def _webui_certificate():
    described = certificate.describe(settings.DATA_DIR)
    return described.as_text() if described else "No WebUI certificate file was found.\n"


def _pair():
    pair = Pair.load()
    if not pair.paired:
        return "Standalone: this appliance is not in a clustered pair.\n"
    return _json({f.name: getattr(pair, f.name) for f in Pair._meta.concrete_fields
                  if f.name not in PAIR_HIDDEN})


def build_support_archive():
    """(file name, .tar.gz bytes). Each part that cannot be read says why in its place."""
    archive = Archive(Scrubber())
    parts = [("configuration.xml", "the configuration, as Backup & Restore writes it",
              lambda: backup.export_xml().decode("utf-8"))]
    worker = {"down": ""}
    live, desired = _guarded(lambda: _ruleset(worker), 2)
    archive.add("ruleset-live.txt", "the live nftables ruleset and whether it drifted", live)
    if desired:
        archive.add("ruleset-desired.txt", "the ruleset the configuration asks for", desired)
    parts += [
        ("network.json", "interfaces, addresses and routes as the kernel has them",
         lambda: _network(worker)),
        ("services.json", "service states (supervisor, workers, beat, Redis)", _services),
        ("versions.txt", "lbadmin, Python, Django, kernel and Debian package versions",
         _versions),
        ("applies.txt", f"the newest {APPLIES} data-plane applies (Logs › Layer 4)", _applies),
        ("health-events.txt", f"the newest {HEALTH_EVENTS} health-check transitions",
         _health_events),
        ("ha-pair.txt", "the clustered pair's state (without its secret)", _pair),
        ("webui-certificate.txt", "the WebUI certificate's names, issuer, validity and "
         "fingerprint (never its key)", _webui_certificate),
    ]
    for name, about, make in parts:
        archive.add(name, about, _guarded(make))
    files = service_logs.log_files(settings.LOG_DIR)
    for service, path in files.items():
        data = service_logs.tail_bytes(path, LOG_TAIL_BYTES)
        archive.add(f"logs/{path.name}", f"the last {len(data) // 1024} KiB of {service}'s log",
                    data.decode("utf-8", errors="replace"))
    if not files:
        archive.add("logs/NONE", "why there are no logs", "No log files were found in logs/.\n")
    prefix = time.strftime("lbadmin-support-%Y%m%d-%H%M%S")
    return f"{prefix}.tar.gz", archive.tar_gz(prefix)


def _guarded(make, parts=1):
    """What `make` returns; should it fail, why, in words (never a 500 for one part)."""
    try:
        return make()
    except Exception as error:  # noqa: BLE001 - one unreadable part must not lose the rest
        why = f"This part could not be made: {type(error).__name__}: {error}\n"
        return why if parts == 1 else (why,) + ("",) * (parts - 1)
