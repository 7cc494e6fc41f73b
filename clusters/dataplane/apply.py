"""The dataplane worker's action: make the kernel hold what the database says.

Exactly one process runs this (the `dataplane` queue, one task at a time), so `_live` — the
Ruleset this process last put in the kernel — is the truth unless someone edits nftables by
hand, which View Configuration detects (drift) and a reconcile repairs.
"""

import logging
import time

from django.db import transaction
from pyroute2.netlink.exceptions import NetlinkError

from core import health
from network import netlink

from .. import runtime
from ..models import ConfigGeneration
from . import conntrack, desired, nft
from .render import diff_script, full_script, render

log = logging.getLogger("lbadmin.dataplane")
_live = None
_unplaced = []  # VIPs no connected subnet holds, as of the last time they were placed


def desired_ruleset():
    """Read the configuration and runtime state in one consistent snapshot; render it."""
    with transaction.atomic():
        generation = ConfigGeneration.current()
        state = desired.from_database(runtime.read_overloaded(), runtime.read_connections(),
                                      health.down_servers())
    return generation, render(state)


def apply_dataplane(full=False):
    """Apply the difference (or everything, when `full` or after a start); cut halted pairs.

    A refused script leaves the previous ruleset live; the error is recorded for the WebUI.
    """
    global _live, _unplaced
    started = time.perf_counter()
    generation, rules = desired_ruleset()
    full = full or _live is None
    script = full_script(rules) if full else diff_script(_live, rules)
    try:
        # VIP addresses go before the rules that answer for them; they are read back from the
        # kernel only when the set of VIPs changes (or one could not be placed yet).
        if full or rules.vips != _live.vips or rules.floating_ips != _live.floating_ips \
                or _unplaced:
            _unplaced = netlink.place_addresses(rules.floating_ips, netlink.FLOATING_PROTO) \
                + netlink.ensure_vips(rules.vips)
        if script:
            nft.apply(script)
    except (nft.NftError, NetlinkError, OSError) as error:
        log.error("apply of generation %s failed: %s", generation, error)
        runtime.record_failed(generation, str(error))
        return {"generation": generation, "ok": False, "error": str(error)}
    newly_cut = rules.cut_marks - (set() if full else _live.cut_marks)
    _live = rules
    cut = sorted(newly_cut)
    for mark in cut:
        conntrack.delete_by_mark(mark)
    elapsed = (time.perf_counter() - started) * 1000
    mode = "full" if full else "difference"
    warnings = [f"No interface has a subnet holding {address}: add an address in that "
                f"subnet under Network Interface Configuration." for address in _unplaced]
    runtime.record_applied(generation, mode, elapsed, warnings)
    log.info("generation %s applied (%s, %.1f ms, %d statements, cut %s)", generation, mode,
             elapsed, script.count("\n"), cut)
    return {"generation": generation, "ok": True, "mode": mode, "milliseconds": elapsed,
            "cut": cut}


def compare_live():
    """{'live', 'desired', 'matches'}: the kernel's listing of lbadmin's table against the one
    the configuration asks for, both as the kernel lists them."""
    _generation, rules = desired_ruleset()
    want = nft.without_runtime_content(nft.canonical(full_script(rules)))
    have = nft.list_table()
    have_clean = nft.without_runtime_content(have) if have is not None else None
    return {"live": have, "desired": want, "matches": have_clean == want}
