"""Maintenance > Restart Services: what the supervisor runs, and restart requests to it."""

import time
from dataclasses import dataclass

from core.audit import record_audit
from core.runtime import SERVICES
from core.workers import ask_supervisor

LABELS = {
    "redis": "Redis (broker and runtime state)",
    "web": "WebUI (gunicorn, HTTPS)",
    "worker-dataplane": "Worker: dataplane (nftables, conntrack, network)",
    "worker-checks": "Worker: checks (health checks)",
    "worker-maintenance": "Worker: maintenance (backups, updates)",
    "beat": "Scheduler (celery beat)",
}


@dataclass
class ServiceRow:
    name: str
    label: str
    running: bool
    pid: int | None
    since: float | None
    version: str | None
    last_restart: dict | None
    restart_reason: str  # why it must restart, or ""

    @property
    def uptime(self):
        return time.time() - self.since if self.since else None


def service_rows(state):
    """One row per service from the supervisor's published state (None: no supervisor)."""
    if state is None:
        return []
    rows = []
    for name in SERVICES:
        info = state["services"].get(name, {})
        rows.append(ServiceRow(
            name, LABELS[name], info.get("running", False), info.get("pid"), info.get("since"),
            info.get("version"), state.get("restarts", {}).get(name),
            _restart_reason(info, state["version"])))
    return rows


def _restart_reason(info, installed):
    if not info.get("pid"):
        return "not running"
    if not info.get("running"):
        return f"exited with code {info.get('exit_code')}"
    if info.get("version") and info["version"] != installed:
        return f"runs {info['version']}, the installed release is {installed}"
    return ""


def restart_needed(state):
    """The services that must restart, each with its reason, for the banner on every page."""
    return [row for row in service_rows(state) if row.restart_reason]


def request_restart(names, user):
    """Ask the supervisor to restart each service (WorkerUnavailable if none runs)."""
    for name in names:
        if name not in SERVICES:
            raise ValueError(f"no service named {name}")
    for name in names:
        ask_supervisor({"restart": name, "by": user.get_username()})
        record_audit(user, f"restarted the service {name}")
