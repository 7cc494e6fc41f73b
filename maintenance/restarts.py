"""Maintenance > Restart Services: what the supervisor runs, and restart requests to it."""

import time
from dataclasses import dataclass

from core.audit import record_audit
from core.runtime import HA_SERVICES, SERVICES
from core.workers import ask_supervisor

LABELS = {
    "redis": "Redis (broker and runtime state)",
    "web": "WebUI (gunicorn, HTTPS)",
    "worker-dataplane": "Worker: dataplane (nftables, conntrack, network)",
    "worker-reader": "Worker: reader (connection counts, traffic samples, Current Connections)",
    "worker-checks": "Worker: checks (health checks)",
    "worker-maintenance": "Worker: maintenance (backups, updates)",
    "beat": "Scheduler (celery beat)",
    "keepalived": "keepalived (HA pair: VRRP, floating addresses)",
    "conntrackd": "conntrackd (HA pair: connection state replication)",
    "vrrp-notify": "VRRP notifications (HA pair: conntrackd's steps on each transition)",
    "chronyd": "chronyd (NTP: System Date & time)",
    "snmpd": "snmpd (SNMP agent: SNMP Configuration)",
}
# Why a service that runs only where it is configured does not run, in Restart Services' words
NOT_CONFIGURED = {
    "chronyd": "no NTP server is set under Local Configuration › System Date & time",
    "snmpd": "SNMP is not enabled under Local Configuration › SNMP Configuration",
}
NOT_IN_A_PAIR = "this appliance is not in a clustered pair"
# A service this release added that the running supervisor does not know: the supervisor's
# code is the release it was started from (an update replaces the services' code, not its
# own), so it neither starts nor restarts the new service until it is started again itself.
UNKNOWN_TO_SUPERVISOR = ("the running supervisor, started from an older release, does not know "
                         "this service: restart the appliance (its supervisor: the lbadmin "
                         "service, or `make demo`) to start it")


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
    recovery: dict | None = None  # the supervisor's automatic restarts: count, last_exit...
    configured: bool = True  # False: an HA service on an appliance that is not in a pair
    known: bool = True  # False: the running supervisor does not know it (UNKNOWN_TO_SUPERVISOR)

    @property
    def auto_restarts(self):
        """'2 (last exit status -9)', or '' when it never exited on its own."""
        if not self.recovery or not self.recovery.get("count") and \
                self.recovery.get("last_exit") is None:
            return ""
        text = f"{self.recovery['count']} (last exit status {self.recovery['last_exit']})"
        if self.recovery.get("gave_up"):
            text += ", gave up: it stays down until restarted here"
        elif self.recovery.get("restarting_in") is not None:
            text += f", restarting in {self.recovery['restarting_in']:.0f} s"
        return text

    @property
    def not_configured_why(self):
        return NOT_CONFIGURED.get(self.name, NOT_IN_A_PAIR)

    @property
    def uptime(self):
        return time.time() - self.since if self.since else None


def service_rows(state):
    """One row per service from the supervisor's published state (None: no supervisor)."""
    if state is None:
        return []
    rows = []
    for name in SERVICES:
        if name not in state["services"]:
            # one that runs only where configured is "not configured" there, as before
            always = name not in HA_SERVICES and name not in NOT_CONFIGURED
            rows.append(ServiceRow(name, LABELS[name], False, None, None, None, None,
                                   UNKNOWN_TO_SUPERVISOR if always else "", configured=always,
                                   known=False))
            continue
        info = state["services"][name]
        recovery = state.get("recovery", {}).get(name)
        # a supervisor that does not say (an older release's) runs no HA service, no chronyd
        # and no snmpd
        configured = info.get("configured",
                              name not in HA_SERVICES and name not in NOT_CONFIGURED)
        reason = _restart_reason(info, state["version"], recovery)
        if not configured and not info.get("running"):
            reason = ""  # not part of a clustered pair: nothing to run, nothing down
        rows.append(ServiceRow(
            name, LABELS[name], info.get("running", False), info.get("pid"), info.get("since"),
            info.get("version"), state.get("restarts", {}).get(name), reason, recovery,
            configured))
    return rows


def _restart_reason(info, installed, recovery=None):
    if not info.get("pid"):
        return "not running"
    if not info.get("running"):
        if recovery and recovery.get("restarting_in") is not None:
            return ""  # the supervisor restarts it by itself in a moment
        if recovery and recovery.get("gave_up"):
            return (f"exited with code {info.get('exit_code')}; the supervisor gave up after "
                    f"{recovery['count']} automatic restarts")
        return f"exited with code {info.get('exit_code')}"
    if info.get("version") and info["version"] != installed:
        return f"runs {info['version']}, the installed release is {installed}"
    return ""


def restart_needed(state):
    """The services that must restart, each with its reason, for the banner on every page."""
    return [row for row in service_rows(state) if row.restart_reason]


ACTIONS = {"restart": "restarted", "stop": "stopped", "start": "started"}


def request_restart(names, user, action="restart"):
    """Ask the supervisor to restart (or stop, or start) each service (WorkerUnavailable if
    none runs). A stopped service stays down: the supervisor restarts only what exits unasked."""
    if action not in ACTIONS:
        raise ValueError(f"no action named {action}")
    for name in names:
        if name not in SERVICES:
            raise ValueError(f"no service named {name}")
    for name in names:
        ask_supervisor({action: name, "by": user.get_username()})
        record_audit(user, f"{ACTIONS[action]} the service {name}")
