"""The lock-out guard: one for every change that could shut the administrators out of the
appliance — a network change that removes the address the browser uses or leaves a subnet the
servers live in without an address (network.services), a firewall lockdown (maintenance).

Such a change is applied at once but kept only if someone confirms it in time
(LBADMIN_NETWORK_CONFIRM_SECONDS), and only from where the kind of change says (a lockdown:
from an address it admits, which proves it did not shut that browser out). Otherwise the
dataplane worker puts the previous settings back by itself. The pieces, in the house's layers:
network.services.hold_change and do_confirm_change (the actions), network.tasks'
roll_back_unconfirmed (the one roll-back task, sent with the countdown), the pages in
network.views. This module is what they share: what each kind is, and the roll-back.

Each kind is registered by the app that owns it, from its AppConfig.ready: network knows no
app above it, so the firewall's lockdown is filled in by maintenance.
"""

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

from django.db import transaction

from .models import PendingNetworkChange

log = logging.getLogger("lbadmin.guard")

NETWORK = "network"  # Local Configuration's own kind (network.services.NETWORK_CHANGE)


class Browser(NamedTuple):
    """Where the browser asking to keep a change is: the address it came from (what a
    lockdown judges) and the appliance's address its connection arrived on (what a network
    change may have removed). "" where not known."""

    came_from: str = ""
    arrived_on: str = ""


class UndoFailed(Exception):
    """The kernel refused the previous settings: the change stays waiting (its page says the
    time ran out) and the dataplane worker tries again when it starts."""


def _anyone(pending, browser):
    return True


def _no_reasons(pending):
    return []


@dataclass(frozen=True)
class Kind:
    """One kind of held change: how it is undone, who may keep it, and its pages' words.

    undo(previous) runs on the dataplane worker inside the roll-back's transaction: it puts
    `previous` back in the kernel and the database and records that in the log, or raises
    UndoFailed. may_confirm(pending, browser) says whether that Browser may keep the change;
    reasons(pending) gives more lines of why the change waits, if any.

    The words: `noun` names the change in the log and messages ("firewall lockdown"), `short`
    on its page ("lockdown"); `previous` is what a roll-back puts back; `title` and `home` are
    the menu page the change is made on and its URL name, `page` the guard page's URL name.
    A browser that may keep the change is told `inside`; one that may not, `outside` and to
    open the page from `where`, and its POST is answered `refused` ({came_from} and
    {arrived_on}: the Browser's addresses)."""

    undo: Callable
    title: str
    home: str
    page: str
    noun: str
    short: str
    previous: str
    where: str
    inside: str
    outside: str
    refused: str
    may_confirm: Callable = _anyone
    reasons: Callable = _no_reasons


KINDS = {}


def register(name, kind):
    KINDS[name] = kind


def kind_of(pending):
    return KINDS[pending.kind]


def waiting(kind):
    """The changes of this kind nobody has kept or rolled back yet."""
    return PendingNetworkChange.objects.filter(kind=kind, confirmed=False, rolled_back=False)


def roll_back(token):
    """The guard, as the dataplane worker runs it when a change's time is up: a change nobody
    confirmed is undone by its kind. "kept" (confirmed, already rolled back or gone), "rolled
    back", or why the kernel refused the previous settings (the change stays waiting, and
    nothing the undo wrote is kept)."""
    try:
        with transaction.atomic():
            pending = PendingNetworkChange.objects.select_for_update().filter(
                token=token).first()
            if pending is None or pending.confirmed or pending.rolled_back:
                return "kept"
            kind = kind_of(pending)
            kind.undo(pending.previous)
            pending.rolled_back = True
            pending.save(update_fields=["rolled_back"])
    except UndoFailed as refused:
        log.error("the %s could not be rolled back: %s", kind.noun, refused)
        return str(refused)
    return "rolled back"
