"""Split brain: when VRRP between the two nodes fails, both go active and both hold the VIPs
and floating IPs. The guard finds it, and the Secondary gives way.

`guard()` runs on each paired node about every second (beat → ha.tasks.guard_split_brain, on
the checks worker: the appliance's namespace, CAP_NET_RAW, never CAP_NET_ADMIN). One round:

- Active here (ha.state): every address keepalived holds (keepalived.conf's
  virtual_ipaddress) is probed with ARP duplicate-address detection from its interface (ha.arping).
  Another host answering for one of them, for LASTS_FOR seconds, is a split brain.
  - The Secondary steps down: it asks its supervisor to stop keepalived (SIGTERM: keepalived
    drops the addresses) and records who answered, for what and when (Pair.split_brain_*,
    `stepped_down`); it reports itself "stepped" to the Primary (ha.state).
  - The Primary never steps down: it records the same, and sends gratuitous ARPs for its
    addresses on this round and on the next QUIET_ROUNDS, so the client and the clusters go
    through it again once the Secondary has let go.
- Stepped down (the Secondary): plain ARP for the same addresses. An answer means the Primary
  still holds them: wait. QUIET_ROUNDS rounds in a row without any answer (the Primary is
  really gone): start keepalived again (it starts as BACKUP and takes over as VRRP says) and
  clear the record. A keepalived someone else started meanwhile (Restart Services) ends the
  waiting as well: the next split brain steps it down again.
- The Primary's record, once nobody answers any more, stays while the Secondary says it is
  stepped down or cannot be heard; it is cleared when the Secondary is heard in any other
  state and QUIET_ROUNDS rounds found nobody else answering.

Never when the node is standalone, or keepalived holds nothing (no addresses yet): a record
left then is cleared. A positive probe counts only if this node was active before and after it
(a normal takeover or failback moves the addresses within milliseconds; it is no split brain).
"""

import ipaddress
import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from core import workers
from core.audit import record_audit
from core.runtime import HA_DIR_NAME, KEEPALIVED_CONF_NAME, supervisor_state

from . import arping as arping_seam
from . import notify, state
from .models import Pair

log = logging.getLogger("lbadmin.ha")

BY = "split-brain guard"
QUIET_ROUNDS = 3  # rounds in a row without an answer: the other node is really gone
# Seconds a duplicate must last before either node acts on it. A keepalived killed with
# SIGKILL leaves its addresses behind until the supervisor restarts it (about a second), and
# the restarted one removes them: that is no split brain, and stepping down for it would
# leave the pair with no active node for QUIET_ROUNDS rounds. A real split brain lasts.
LASTS_FOR = 5
PEER_STALE_AFTER = 10  # seconds: ha.replication.STALE_AFTER (the Secondary not heard lately)
FIELDS = ("split_brain_since", "split_brain_at", "split_brain_detail", "stepped_down",
          "split_brain_quiet")
_one_at_a_time = threading.Lock()  # the checks worker's threads: never two rounds at once


def held_addresses(text=None):
    """[(address, device)] of keepalived.conf's virtual_ipaddress block (IPv4: arping is
    ARP); [] when there is no file or no address."""
    if text is None:
        try:
            text = (settings.DATA_DIR / HA_DIR_NAME / KEEPALIVED_CONF_NAME).read_text(
                encoding="utf-8", errors="replace")
        except OSError:
            return []
    held, inside = [], False
    for line in text.splitlines():
        words = line.split()
        if words[:2] == ["virtual_ipaddress", "{"]:
            inside = True
        elif inside and words[:1] == ["}"]:
            inside = False
        elif inside and len(words) >= 3 and words[1] == "dev":
            try:
                address = ipaddress.ip_interface(words[0]).ip
            except ValueError:
                continue
            if address.version == 4:
                held.append((str(address), words[2]))
    return held


def keepalived_started_at():
    """When the supervisor last started keepalived, if it runs now (else None)."""
    service = ((supervisor_state() or {}).get("services") or {}).get("keepalived") or {}
    return service.get("since") if service.get("running") else None


class Guard:
    """One round of the rule; every side effect is a parameter, so the unit tests run it
    with fakes."""

    def __init__(self, arping=arping_seam, ask_supervisor=None, local_state=None,
                 addresses=held_addresses, started_at=keepalived_started_at, now=timezone.now,
                 audit=record_audit):
        self.arping = arping
        self.ask_supervisor = ask_supervisor or workers.ask_supervisor
        self.local_state = local_state or (lambda: state.vrrp_state(stepped_down=False))
        self.addresses = addresses
        self.started_at = started_at
        self.now = now
        self.audit = audit

    # -- the round ------------------------------------------------------------------------

    def run(self):
        """One round; returns what it did in a word (for logs and tests)."""
        pair = Pair.objects.filter(pk=1).first()
        if pair is None or not pair.paired:
            return self._clear(pair, "") or "standalone"
        held = self.addresses()
        if not held:
            return self._clear(pair, "") or "nothing held"
        if pair.stepped_down:
            return self._wait_for_the_primary(pair, held)
        if self.local_state() != "active":
            return self._quiet_round(pair, held, active=False)
        found = self._probe(self.arping.duplicate, held)
        if self.local_state() != "active":
            return "moved meanwhile"  # a takeover or failback under way: not a split brain
        answered = [(address, device, answer) for address, device, answer in found
                    if answer.answered]
        if not answered:
            return self._quiet_round(pair, held, active=True)
        return self._split_brain(pair, held, answered)

    def _probe(self, probe, held):
        """probe(device, address) for every held address at once (each waits up to 1 s)."""
        with ThreadPoolExecutor(max_workers=min(16, len(held))) as pool:
            answers = list(pool.map(lambda item: probe(item[1], item[0]), held))
        for (address, device), answer in zip(held, answers, strict=True):
            if answer.error:
                log.warning("split-brain guard: probing %s on %s: %s", address, device,
                            answer.error)
        return [(address, device, answer)
                for (address, device), answer in zip(held, answers, strict=True)]

    def _who(self, pair, mac):
        """The other node's address when the answer came from its MAC, else the MAC."""
        peer = str(pair.peer_ip or "")
        if mac and peer and self.arping.neighbour_mac(peer) == mac:
            return peer
        return f"another host ({mac})" if mac else "another host"

    def _split_brain(self, pair, held, answered):
        now = self.now()
        address, _, answer = answered[0]
        detail = f"{self._who(pair, answer.mac)} also answered for {address}"
        first = not pair.split_brain
        pair.split_brain_since = pair.split_brain_since or now
        pair.split_brain_at = now
        pair.split_brain_detail = detail[:300]
        pair.split_brain_quiet = 0
        if now - pair.split_brain_since < timedelta(seconds=LASTS_FOR):
            pair.save(update_fields=FIELDS)
            return "suspected"
        if pair.role == Pair.Role.SECONDARY:
            try:
                self.ask_supervisor({"stop": "keepalived", "by": BY})
            except workers.WorkerUnavailable as problem:
                pair.save(update_fields=FIELDS)
                log.error("split brain: %s; keepalived could not be stopped: %s", detail,
                          problem)
                return "could not step down"
            pair.stepped_down = True
            pair.save(update_fields=FIELDS)
            self._write_backup()
            self.audit(BY, f"Split brain: {detail}; the Secondary stepped down (keepalived "
                           f"stopped) and waits while the Primary's addresses answer")
            return "stepped down"
        pair.save(update_fields=FIELDS)
        if first:
            self.audit(BY, f"Split brain: {detail}; the Primary keeps its addresses")
        self._announce(held)
        return "kept the addresses"

    def _wait_for_the_primary(self, pair, held):
        """Stepped down: wait while the Primary's addresses answer; start keepalived again
        after QUIET_ROUNDS silent rounds."""
        started = self.started_at()
        since = pair.split_brain_since
        if started is not None and since is not None and \
                started > since.timestamp() + 1:  # someone else started it meanwhile
            self._clear(pair, "keepalived was started again meanwhile")
            return "started by someone else"
        found = self._probe(self.arping.answers, held)
        if any(answer.answered for _, _, answer in found):
            if pair.split_brain_quiet:
                pair.split_brain_quiet = 0
                pair.save(update_fields=["split_brain_quiet"])
            return "waiting"
        if all(answer.error for _, _, answer in found):
            return "probe failed"
        pair.split_brain_quiet += 1
        if pair.split_brain_quiet < QUIET_ROUNDS:
            pair.save(update_fields=["split_brain_quiet"])
            return "quiet"
        try:
            self._write_backup()  # keepalived starts as BACKUP; vrrp-notify says what follows
            self.ask_supervisor({"start": "keepalived", "by": BY})
        except workers.WorkerUnavailable as problem:
            log.error("split brain: keepalived could not be started again: %s", problem)
            return "could not start"
        self._clear(pair, f"the Primary's addresses did not answer {QUIET_ROUNDS} probes in "
                          f"a row; keepalived started again")
        return "started again"

    def _quiet_round(self, pair, held, active):
        """Nobody else answered (or this node holds nothing now): count towards the end of
        the Primary's record."""
        if not pair.split_brain:
            if active and pair.role == Pair.Role.PRIMARY and self._peer_stepped_down(pair):
                return self._peer_gave_way(pair, held)
            return "ok" if active else "not active"
        pair.split_brain_quiet = min(pair.split_brain_quiet + 1, 255)
        pair.save(update_fields=["split_brain_quiet"])
        if active and pair.split_brain_quiet <= QUIET_ROUNDS:
            self._announce(held)  # the neighbours' caches may still name the Secondary
        if pair.split_brain_quiet >= QUIET_ROUNDS and self._peer_heard_well(pair):
            self._clear(pair, "nobody else answers for the addresses and the Secondary is "
                              f"{pair.peer_state}")
            return "over"
        return "quiet"

    def _peer_stepped_down(self, pair):
        return pair.peer_state == "stepped" and pair.last_contact is not None and \
            self.now() - pair.last_contact <= timedelta(seconds=PEER_STALE_AFTER)

    def _peer_gave_way(self, pair, held):
        """The Secondary says it stepped down before this node's probes caught it answering:
        the same record, in the Secondary's words as far as this node knows them."""
        now = self.now()
        pair.split_brain_since = pair.split_brain_at = now
        pair.split_brain_detail = (f"the Secondary {pair.peer_ip} also took "
                                   f"{', '.join(address for address, _ in held)}")[:300]
        pair.split_brain_quiet = 0
        pair.save(update_fields=FIELDS)
        self.audit(BY, f"Split brain: {pair.split_brain_detail}; it stepped down, the Primary "
                       f"keeps its addresses")
        self._announce(held)
        return "the Secondary gave way"

    def _peer_heard_well(self, pair):
        """The other node was heard lately and is not stepped down."""
        if pair.last_contact is None or \
                self.now() - pair.last_contact > timedelta(seconds=PEER_STALE_AFTER):
            return False
        return pair.peer_state not in ("stepped", "", "down")

    def _announce(self, held):
        with ThreadPoolExecutor(max_workers=min(16, len(held))) as pool:
            problems = list(pool.map(lambda item: self.arping.announce(item[1], item[0]),
                                     held))
        for problem in filter(None, problems):
            log.warning("split-brain guard: gratuitous ARP: %s", problem)

    def _write_backup(self):
        try:
            notify.write_state(str(settings.DATA_DIR / HA_DIR_NAME), "backup")
        except OSError as problem:
            log.warning("split-brain guard: could not write the VRRP state: %s", problem)

    def _clear(self, pair, why):
        """End the record (returns None, so `_clear(...) or word` reads as the word)."""
        if pair is None or not (pair.split_brain or pair.stepped_down):
            return None
        if why:
            self.audit(BY, f"Split brain over: {why}")
        pair.split_brain_since = pair.split_brain_at = None
        pair.split_brain_detail = ""
        pair.stepped_down = False
        pair.split_brain_quiet = 0
        pair.save(update_fields=FIELDS)
        return None


def guard(**seams):
    """One round (the beat task's body); skipped while the previous one still runs."""
    if not _one_at_a_time.acquire(blocking=False):
        return "busy"
    try:
        return Guard(**seams).run()
    finally:
        _one_at_a_time.release()


def describe(pair):
    """The HA page's red line, in words, or "" when there is no split brain."""
    if not pair.split_brain:
        return ""
    at = timezone.localtime(pair.split_brain_at or pair.split_brain_since)
    line = f"Split brain: {pair.split_brain_detail} at {at:%H:%M:%S}"
    if pair.stepped_down:
        return (f"{line}; the Secondary stepped down and waits while the Primary's addresses "
                f"answer (keepalived starts again after {QUIET_ROUNDS} silent probes in a row)")
    if pair.role == Pair.Role.PRIMARY:
        return f"{line}; the Primary kept its addresses and the Secondary gives way"
    return f"{line}; the Secondary is stepping down"
