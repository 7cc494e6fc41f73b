"""The dataplane worker's action: make the kernel hold what the database says.

Exactly one process runs this (the `dataplane` queue, one task at a time), so `_live` — the
Ruleset this process last put in the kernel — is the truth unless someone edits nftables by
hand, which View Configuration detects (drift) and a reconcile repairs.

In an HA pair (core.pairing has an address owner: keepalived) the worker places no VIP or
floating IP itself: it hands the set to the owner, which holds it on the active node only, and
removes the addresses it placed itself before (an appliance that was standalone until now), so
it never fights keepalived. Both nodes hold the same ruleset (plus the pair's `ct state invalid`
drop), whichever is active.
"""

import logging
import time

from django.db import transaction

from core import health, pairing
from network import netlink

from .. import alerts, runtime
from ..models import ConfigGeneration
from . import conntrack, desired, nft
from .render import diff_script, full_script, render

log = logging.getLogger("lbadmin.dataplane")
_live = None  # the Ruleset in the kernel, as far as this process put it there
_unplaced = []  # VIPs and floating IPs no connected subnet holds, as of their last placing
_uncut = set()  # halted pairs whose open connections a failed apply did not cut yet
_full_due = False  # a full apply failed before its ruleset went in: the next one is full too


def forget_live():
    """As at the worker's start: nothing known of the kernel, so the next apply is full (tests,
    whose labs come and go under one process)."""
    global _live, _unplaced, _uncut, _full_due
    _live, _unplaced, _uncut, _full_due = None, [], set(), False


def desired_ruleset(owner=None):
    """Read the configuration and runtime state in one consistent snapshot; render it (as a
    pair's node when `owner`, the pair's address owner, is given)."""
    with transaction.atomic():
        generation = ConfigGeneration.current()
        state = desired.from_database(runtime.read_overloaded(), runtime.read_connections(),
                                      health.down_servers_or_stored())
    return generation, render(state, pair=owner is not None)


def place_addresses(rules, owner):
    """Put the VIPs and floating IPs where they belong: on this node's interfaces when it is
    standalone; handed to the pair's owner (keepalived) otherwise, after removing those the
    worker placed itself (marked FLOATING_PROTO / VIP_PROTO: never the admin's, never
    keepalived's). Returns the addresses that could not be placed."""
    if owner is None:
        return netlink.place_addresses(rules.floating_ips, netlink.FLOATING_PROTO) \
            + netlink.ensure_vips(rules.vips)
    netlink.place_addresses((), netlink.FLOATING_PROTO)
    netlink.ensure_vips(())
    return list(owner.hand_over(rules.floating_ips, rules.vips))


def apply_dataplane(full=False):
    """Apply the difference (or everything, when `full` or after a start); cut halted pairs.

    Whatever goes wrong in an apply — reading the desired state, placing addresses, nft, the
    conntrack cut — is logged with its traceback and recorded as a failed apply with its
    reason, which the WebUI shows, and the worker takes the next change as usual (only a
    failure to record it, with Redis or the database down, escapes). `_live` always says what
    the kernel holds: a refused script leaves the previous ruleset live; once nft took the
    new one, it is live even if the cut after it fails.
    """
    global _live, _unplaced, _uncut, _full_due
    started = time.perf_counter()
    generation, applied, stage = None, False, "reading the desired state"
    try:
        owner = pairing.address_owner()
        generation, rules = desired_ruleset(owner)
        # becoming a pair's node, or standalone again, changes the table's base: full
        full = full or _full_due or _live is None or _live.pair != rules.pair
        script = full_script(rules) if full else diff_script(_live, rules)
        # VIP addresses go before the rules that answer for them; they are read back from the
        # kernel only when the set of VIPs changes (or one could not be placed yet).
        stage = "placing addresses" if owner is None else "handing addresses to the HA pair"
        if full or rules.vips != _live.vips or rules.floating_ips != _live.floating_ips \
                or _unplaced:
            _unplaced = place_addresses(rules, owner)
        stage = "applying the ruleset"
        if script:
            nft.apply(script)
        applied, _full_due = True, False
        # From here the kernel holds `rules`, whatever fails after this.
        newly_cut = rules.cut_marks - (set() if full else _live.cut_marks)
        _live = rules
        # A cut a failed apply left undone is retried while the pair is still halted.
        cut = sorted(newly_cut | (_uncut & rules.cut_marks))
        _uncut = set(cut)
        stage = "cutting halted servers' connections"
        for mark in cut:
            conntrack.delete_by_mark(mark)
            _uncut.discard(mark)
    except Exception as error:  # any failure is the apply's result, never the worker's end
        return _failed(generation, stage, applied, full, error)
    elapsed = (time.perf_counter() - started) * 1000
    mode = "full" if full else "difference"
    warnings = [f"No interface has a subnet holding {address}: add an address in that "
                f"subnet under Network Interface Configuration." for address in _unplaced]
    # per address too, so System Overview can put the reason on the service's own row
    runtime.record_applied(generation, mode, elapsed, warnings, unplaced=_unplaced,
                           statements=script.count("\n"), cut=cut)
    log.info("generation %s applied (%s, %.1f ms, %d statements, cut %s)", generation, mode,
             elapsed, script.count("\n"), cut)
    return {"generation": generation, "ok": True, "mode": mode, "milliseconds": elapsed,
            "cut": cut}


def _failed(generation, stage, applied, full, error):
    """Log and record a failed apply; its result for the caller."""
    global _full_due
    reason = f"{type(error).__name__}: {error}"
    if applied:
        reason += (" (the new ruleset is live, but open connections of halted servers were "
                   "not cut; the next apply tries again)")
    elif full:
        _full_due = True
    log.error("apply of generation %s failed while %s: %s", generation, stage, reason,
              exc_info=error)
    if generation is None:
        # The desired state could not be read: the failure belongs to the newest change.
        # Should the database not answer even this, the error escapes and, nothing being
        # recorded, the WebUI keeps saying "Applying…" and the sampler sends the apply again.
        generation = ConfigGeneration.current()
    runtime.record_failed(generation, reason, mode="full" if full else "difference",
                          stage=stage)
    alerts.raise_apply_failed(generation, reason, stage)  # queued, never waited on
    return {"generation": generation, "ok": False, "error": reason, "stage": stage}


def compare_live():
    """{'live', 'desired', 'matches'}: the kernel's listing of lbadmin's table against the one
    the configuration asks for, both as the kernel lists them."""
    _generation, rules = desired_ruleset(pairing.address_owner())
    want = nft.without_runtime_content(nft.canonical(full_script(rules)))
    have = nft.list_table()
    have_clean = nft.without_runtime_content(have) if have is not None else None
    return {"live": have, "desired": want, "matches": have_clean == want}
