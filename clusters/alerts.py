"""What happened to Layer 4, in the words an alert carries (core.alerts queues it; the
maintenance worker sends it).

A real server's transition says whether the fallback server took over or was left: that is
decided as System Overview decides "Fallback server in use" (clusters.status), over the health
states before and after the transition, so an alert never says something the overview does not.
"""

import logging

from core import alerts
from core import health as health_state

from . import status

log = logging.getLogger("lbadmin.alerts")

FALLBACK_WORDS = "Fallback server in use"


def fallback_in_use(service, down):
    """Whether new connections of `service` go to its fallback server with `down` (the ids of
    the servers their health check took down), as System Overview says it."""
    row = status.service_row(service, {}, frozenset(), None, {}, down=frozenset(down))
    return row.words.startswith(FALLBACK_WORDS)


def service_left_without_servers(service, down):
    row = status.service_row(service, {}, frozenset(), None, {}, down=frozenset(down))
    return row.words.startswith("Down: no real server available")


def fallback_words(service):
    port = f":{service.fallback_port}" if service.fallback_port else ""
    return f"fallback server {service.fallback_ip}{port}"


def server_transition(server, transition, reason, fails=0, down_after=()):
    """(text, details) of a real server going "down" or "up"; `down_after` is the set of
    down servers once this transition counts, `reason` the check's words."""
    service = server.service
    down_after = set(down_after)
    down_before = (down_after - {server.id}) if transition == "down" \
        else (down_after | {server.id})
    if transition == "down":
        down_after.add(server.id)
    else:
        down_after.discard(server.id)
    before = fallback_in_use(service, down_before)
    after = fallback_in_use(service, down_after)
    where = f"Real server {server.label} ({server.ip}) of {service.label}"
    if transition == "down":
        counted = f" after {fails} failed checks in a row" if fails > 1 else ""
        text = f"{where} is down{counted}: {reason}"
        if after and not before:
            text += f"; {fallback_words(service)} took over"
        elif service_left_without_servers(service, down_after):
            text += f"; no real server of {service.label} is left and it has no fallback server"
    else:
        text = f"{where} is up again: {reason}"
        if before and not after:
            text += f"; the {fallback_words(service)} is no longer used"
    details = {"service": service.label, "vip": service.vip, "real_server": server.label,
               "ip": server.ip, "state": transition, "reason": reason,
               "fallback_in_use": after, "fallback_took_over": after and not before,
               "fallback": service.fallback_ip}
    return text, details


def raise_server_transition(server, transition, reason, fails=0):
    """Queue the alert of a health transition (the checks worker, after it saved the state).
    Never raises: an alert is never worth a health check."""
    try:
        down = health_state.down_servers_or_stored()
        text, details = server_transition(server, transition, reason, fails, down)
    except Exception as problem:  # noqa: BLE001 - the transition counts whatever this does
        log.warning("no alert for %s going %s: %s", server, transition, problem)
        return None
    return alerts.raise_alert(f"real-server-{transition}", text, service_id=server.service_id,
                              details=details)


def raise_apply_failed(generation, error, stage=""):
    """Queue the alert of an apply the kernel (or anything) refused: once per generation —
    the worker tries the same generation again and again until it goes in."""
    what = f" while {stage}" if stage else ""
    text = f"The data plane's apply of configuration generation {generation} failed{what}: " \
           f"{error}. The previous ruleset stays live."
    return alerts.raise_alert("apply-failed", text, details={
        "generation": generation, "stage": stage, "error": error},
        once_key=f"apply-failed:{generation}", once_for=3600)
