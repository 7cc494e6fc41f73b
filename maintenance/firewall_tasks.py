"""The firewall's kernel side: run by the dataplane worker (core.queues routes these tasks
there), the one process holding CAP_NET_ADMIN, in the appliance's namespace. Each apply is
one nft transaction over one of the firewall's own tables (maintenance.firewall), so a
refused one leaves the previous rules live, and neither touches the data plane's table.

The tables are applied again when the dataplane worker starts (a reboot leaves the kernel
empty; the database says what it should hold), after a lockdown nobody confirmed in time,
and when this node joins or leaves an HA pair (the peer is always admitted).
"""

import logging

from celery import shared_task
from celery.signals import worker_ready

from clusters.dataplane import nft
from core import environment, pairing
from core.audit import record_audit
from network import guard
from network.tasks import resume_guard

from . import firewall
from .models import FirewallLockdown, FirewallScript

log = logging.getLogger("lbadmin.firewall")


def lockdown_script(enabled, networks_text):
    """The nft script of this lockdown on this appliance (its WebUI ports, its HA peer)."""
    ports = firewall.lockdown_ports(environment.https_port(), environment.http_port())
    return firewall.render_lockdown(enabled, firewall.parse_networks(networks_text), ports,
                                    peer=pairing.peer_address())


def apply_lockdown(enabled, networks_text):
    """Put this lockdown in the kernel: {"ok": True} or {"ok": False, "error": words}."""
    try:
        nft.apply(lockdown_script(enabled, networks_text))
    except (nft.NftError, ValueError) as error:
        return {"ok": False, "error": f"nftables refused the lockdown: {error}"}
    return {"ok": True}


def apply_script(script):
    """Check the administrator's script (the wrapper's rules, then `nft -c` over the live
    ruleset) and only then apply it wrapped, as one transaction. {"ok": True} or {"ok":
    False, "error": the refusal, nft's line numbers made the script's own}."""
    try:
        firewall.check_script(script)
        wrapped = firewall.render_script(script)
        nft.check(wrapped)
        nft.apply(wrapped)
    except firewall.ScriptRefused as refused:
        return {"ok": False, "error": str(refused)}
    except nft.NftError as error:
        return {"ok": False, "error": firewall.administrators_lines(str(error))}
    return {"ok": True}


def live_tables():
    """The firewall's tables as the kernel lists them now (None: absent)."""
    return {"lockdown": nft.list_named_table(firewall.LOCKDOWN_TABLE),
            "script": nft.list_named_table(firewall.SCRIPT_TABLE)}


def put_back_lockdown(previous):
    """The lockdown kind's undo (network.guard.Kind): the lockdown before a held change back
    in the kernel and the database."""
    result = apply_lockdown(previous["enabled"], previous["networks"])
    if not result["ok"]:  # the guard page says so; the worker's start tries again
        raise guard.UndoFailed(result["error"])
    stored = FirewallLockdown.load()
    stored.enabled, stored.networks = previous["enabled"], previous["networks"]
    stored.save()
    record_audit("lbadmin", "rolled back a firewall lockdown nobody confirmed in time")


def apply_from_database():
    """Both tables as the database says (a held lockdown whose time ran out while the worker
    was away is rolled back first: network.tasks.resume_guard). Each on its own: one refused
    never keeps the other out. Returns {"lockdown": result, "script": result}."""
    resume_guard(firewall.LOCKDOWN)
    stored = FirewallLockdown.load()
    results = {"lockdown": apply_lockdown(stored.enabled, stored.networks),
               "script": apply_script(FirewallScript.load().script)}
    for name, result in results.items():
        if not result["ok"]:
            log.error("the firewall's %s was not applied: %s", name, result["error"])
    return results


@shared_task
def apply_lockdown_task(enabled, networks):
    return apply_lockdown(enabled, networks)


@shared_task
def apply_script_task(script):
    return apply_script(script)


@shared_task
def live_tables_task():
    return live_tables()


@shared_task(ignore_result=True)
def apply_firewall_from_database():
    return apply_from_database()


@worker_ready.connect(dispatch_uid="lbadmin-firewall-at-start")
def apply_firewall_at_start(sender, **kwargs):
    """The dataplane worker puts the firewall's tables back when it starts."""
    if "dataplane" in {queue.name for queue in sender.task_consumer.queues}:
        apply_firewall_from_database.apply_async(queue="dataplane")
