"""Replication of the configuration from the Primary to the Secondary, and of the Secondary's
Halt/Drain/Online actions back to the Primary.

What goes: what a backup holds (maintenance.backup) minus what the guide's 10.1.1 keeps on
each appliance — <network> (hostname & DNS, interfaces, VLANs, routing) and <online-update>
(Physical – Advanced Configuration, software updates) — plus the WebUI users (name, password
hash, active, names, email, role). Date & time, security, SNMP, graphing, backups, the firewall and
lockdown are not in a backup at all, so they stay local too.

The Secondary applies a payload through maintenance.backup.restore — the very forms the WebUI
uses — all or nothing: a refusal leaves its configuration and generation as they were and is
answered in words (both HA pages show it). While the Secondary holds local actions not yet
handed to the Primary it answers "pending local actions" (409) and keeps them.
"""

import contextlib
import datetime
import fcntl
import json
import logging
import xml.etree.ElementTree as ET  # noqa: S405 - writing only; parsing goes through defusedxml

from defusedxml.ElementTree import fromstring
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import identify_hasher
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from clusters import services as cluster_services
from clusters.models import ConfigGeneration, FloatingIP, RealServer, VirtualService
from clusters.tasks import apply_dataplane
from core import health
from core.audit import record_change
from core.models import UserRole
from core.roles import CONFIG, ROLE_WORDS, role_of
from maintenance import backup
from maintenance.revisions import record_revision

from . import peer
from .models import GenerationStamp, Pair, PendingAction
from .state import known, vrrp_state

log = logging.getLogger("lbadmin.ha")
LOCAL_ELEMENTS = ("network", "online-update")  # the guide's 10.1.1, as a backup holds them
USER_FIELDS = ("username", "password", "is_active", "first_name", "last_name", "email")
PENDING = "pending local actions"
STALE_AFTER = 10  # seconds without contact after which the page shows the other node down


class ReplicationRefused(Exception):
    """The Secondary's own rules refuse a payload; the message says why, in words."""


# -- what is sent ----------------------------------------------------------------------------

def replicated_xml():
    """The backup's XML without the elements that stay local."""
    root = fromstring(backup.export_xml(), forbid_dtd=True)
    for name in LOCAL_ELEMENTS:
        for element in root.findall(name):
            root.remove(element)
    return b'<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="utf-8")


def users():
    return [{field: getattr(user, field) for field in USER_FIELDS} | {"role": role_of(user)}
            for user in get_user_model().objects.order_by("username")]


def payload():
    """The generation first, then the configuration: a change committed between the two is
    sent again by the catch-up (acknowledged < current), never labelled older than it is."""
    generation = ConfigGeneration.current()
    return {"generation": generation, "xml": replicated_xml().decode(), "users": users(),
            "state": vrrp_state()}


# -- the Primary ----------------------------------------------------------------------------

def stamp_generation():
    """Remember when the current generation was made (kept for the newest KEEP)."""
    GenerationStamp.objects.get_or_create(number=ConfigGeneration.current(),
                                          defaults={"at": timezone.now()})
    old = GenerationStamp.objects.order_by("-number").values_list("number", flat=True)[
        GenerationStamp.KEEP:GenerationStamp.KEEP + 1]
    if old:
        GenerationStamp.objects.filter(number__lte=old[0]).delete()


@contextlib.contextmanager
def one_sender():
    """One replication (or push) at a time across the maintenance worker's processes; a
    second one finds the lock taken and leaves the work to the one running (or the next
    catch-up). Yields whether it holds the lock."""
    directory = settings.DATA_DIR / "ha"
    directory.mkdir(mode=0o700, exist_ok=True)
    with open(directory / "replication.lock", "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def replicate():
    """On the Primary: send the configuration to the Secondary and record its answer."""
    with one_sender() as holding:
        if not holding:
            return None
        pair = Pair.load()
        if pair.role != Pair.Role.PRIMARY:
            return None
        data = payload()
        Pair.objects.filter(pk=pair.pk).update(generation_sent=data["generation"])
        try:
            answer = peer.call(pair, "replicate", data)
        except peer.PeerError as problem:
            _record(pair, peer_state="down",
                    last_error=f"Generation {data['generation']} not sent: {problem}")
            return None
        _record_answer(pair, answer, data["generation"])
        return answer


def _record(pair, **fields):
    Pair.objects.filter(pk=pair.pk, role=pair.role).update(**fields)


def _record_answer(pair, answer, generation):
    fields = {"last_contact": timezone.now(), "peer_state": known(answer.data.get("state"))}
    acked = answer.data.get("acked")
    if answer.status == 200 and isinstance(acked, int) and acked >= 0:
        fields |= {"generation_acked": acked, "last_error": ""}
    elif answer.status == 409:
        fields["last_error"] = (f"Generation {generation} waits: the Secondary has {PENDING} "
                                "(Halt, Drain or Online taken there) that it hands over first.")
    else:
        fields["last_error"] = (f"The Secondary refused generation {generation}: "
                                f"{answer.data.get('error') or f'HTTP {answer.status}'}")
    _record(pair, **fields)


def status_call():
    """On the Primary, when nothing is waiting: ask how the Secondary is (its VRRP state)."""
    pair = Pair.load()
    try:
        answer = peer.call(pair, "status", {"state": vrrp_state()})
    except peer.PeerError as problem:
        _record(pair, peer_state="down", last_error=f"The Secondary cannot be reached: {problem}")
        return
    _record(pair, last_contact=timezone.now(), peer_state=known(answer.data.get("state")))


def catch_up():
    """Beat, every 2 s, on both nodes. The Primary re-sends while the Secondary has not
    acknowledged the current generation (so a Secondary that was away catches up when it
    returns), else asks its state; the Secondary hands over its pending local actions."""
    pair = Pair.load()
    if pair.role == Pair.Role.PRIMARY and pair.status != Pair.Status.BREAKING:
        if pair.generation_acked != ConfigGeneration.current() or pair.last_error:
            return replicate()
        return status_call()
    if pair.role == Pair.Role.SECONDARY and PendingAction.objects.exists():
        return push_actions()
    return None


# -- the Secondary -------------------------------------------------------------------------------

def note_contact(pair, data):
    _record(pair, last_contact=timezone.now(), peer_state=known(data.get("state")))


def do_apply_replication(data):
    """On the Secondary: apply the Primary's payload all or nothing. Returns (HTTP status,
    answer)."""
    pair = Pair.load()
    note_contact(pair, data)
    if PendingAction.objects.exists():
        return 409, {"error": PENDING, "pending": PendingAction.objects.count(),
                     "acked": pair.generation_acked, "state": vrrp_state()}
    generation = data.get("generation")
    if not isinstance(generation, int) or isinstance(generation, bool) or generation < 0:
        return 400, {"error": "The payload has no generation number.", "state": vrrp_state()}
    try:
        _apply(data, generation, pair)
    except (ReplicationRefused, backup.BackupError) as refused:
        message = f"Generation {data.get('generation')} refused: {refused}"[:2000]
        _record(pair, last_error=message)
        return 422, {"error": str(refused)[:2000], "acked": pair.generation_acked,
                     "state": vrrp_state()}
    return 200, {"acked": generation, "state": vrrp_state()}


@transaction.atomic
def _apply(data, generation, pair):
    xml = data.get("xml")
    if not isinstance(xml, str):
        raise ReplicationRefused("The payload holds no configuration.")
    parsed = backup.parse(xml.encode())
    if parsed["network"] or parsed["online_update"]:
        raise ReplicationRefused("The payload carries settings the guide keeps on each "
                                 "appliance (network, online update): refused.")
    backup.restore(parsed, f"replication from {pair.peer_ip}")
    _apply_users(data.get("users"))
    # The Primary's number, so both pages speak of the same generation; it may be lower than
    # this appliance's own (the dataplane applies when it differs, not only when it grows).
    ConfigGeneration.objects.update_or_create(pk=1, defaults={"number": generation})
    Pair.objects.filter(pk=pair.pk).update(generation_sent=generation,
                                           generation_acked=generation, last_error="")


def _apply_users(given):
    """The WebUI users as the Primary has them (its loadbalancer password included); users
    the Primary has not are removed. A payload without users changes none (nobody could log
    in)."""
    if not isinstance(given, list) or not given:
        raise ReplicationRefused("The payload holds no WebUI users.")
    model = get_user_model()
    names = []
    for values in given:
        # "role" since roles came (core.roles); a Primary of an older release sends none
        if not isinstance(values, dict) or set(values) - {"role"} != set(USER_FIELDS):
            raise ReplicationRefused("A WebUI user in the payload is incomplete.")
        username = str(values["username"])
        role = values.get("role", CONFIG)  # an older release's users could do everything
        if not isinstance(role, str) or role not in ROLE_WORDS:
            raise ReplicationRefused(f"The WebUI user “{username[:40]}” has no role "
                                     "this appliance knows.")
        try:
            model.username_validator(username)
            if len(username) > 150:
                raise ValidationError("longer than 150 characters")
            if not str(values["password"]).startswith("!"):  # "!…": an unusable password
                identify_hasher(str(values["password"]))
        except (ValidationError, ValueError) as problem:
            raise ReplicationRefused(f"The WebUI user “{username[:40]}” cannot be stored "
                                     f"({problem}).") from None
        stored, _ = model.objects.update_or_create(username=username, defaults={
            "password": str(values["password"]), "is_active": bool(values["is_active"]),
            "first_name": str(values["first_name"])[:150],
            "last_name": str(values["last_name"])[:150], "email": str(values["email"])[:254]})
        UserRole.objects.update_or_create(user=stored, defaults={"role": role})
        names.append(username)
    model.objects.exclude(username__in=names).delete()


def drop_replicated_configuration(user):
    """On a Secondary leaving the pair: a revision of what it holds first (History brings it
    back), then no virtual services, real servers or floating IPs: it must not hold the VIPs
    the Primary holds."""
    record_revision(user=str(user), action="before breaking the clustered pair: the "
                                            "configuration replicated from the Primary")
    server_ids = list(RealServer.objects.values_list("id", flat=True))
    VirtualService.objects.all().delete()
    FloatingIP.objects.all().delete()
    ConfigGeneration.bump()
    record_change(user, "removed the replicated virtual services, real servers and floating "
                        "IPs (the clustered pair was broken)")
    transaction.on_commit(lambda: health.forget(server_ids), robust=True)
    transaction.on_commit(lambda: apply_dataplane.apply_async(kwargs={"full": True}),
                          robust=True)


# -- Halt, Drain and Online on the Secondary -------------------------------------------------------

def do_queue_local_action(server_id, state, user):
    """Remember a Halt/Drain/Online the Secondary applied locally, for the Primary."""
    return PendingAction.objects.create(server_id=server_id, state=state, at=timezone.now(),
                                        user=str(getattr(user, "username", user))[:150])


def push_actions():
    """On the Secondary: hand the pending actions to the Primary; those it decided on go."""
    with one_sender() as holding:
        if not holding:
            return None
        pair = Pair.load()
        actions = list(PendingAction.objects.all())
        if pair.role != Pair.Role.SECONDARY or not actions:
            return None
        try:
            answer = peer.call(pair, "actions", {"state": vrrp_state(), "actions": [
                {"id": a.pk, "server": a.server_id, "state": a.state,
                 "at": a.at.isoformat(), "user": a.user} for a in actions]})
        except peer.PeerError as problem:
            _record(pair, peer_state="down",
                    last_error=f"{len(actions)} local action(s) wait for the Primary: {problem}")
            return None
        if answer.status != 200:
            _record(pair, last_error=f"The Primary refused the local actions: "
                                     f"{answer.data.get('error') or answer.status}")
            return answer
        decided = [int(i) for i in answer.data.get("decided", []) if str(i).isdigit()]
        PendingAction.objects.filter(pk__in=decided).delete()
        note_contact(pair, answer.data)
        _record(pair, last_error="")
        return answer


def do_accept_actions(data):
    """On the Primary: each action through the same clusters.services action the System
    Overview buttons use — unless the Primary changed that server's configuration later than
    the action was taken (the later action wins). Returns (status, answer)."""
    pair = Pair.load()
    note_contact(pair, data)
    actions = data.get("actions")
    if not isinstance(actions, list):
        return 400, {"error": "No actions given.", "state": vrrp_state()}
    decided, skipped, latest = [], [], {}
    for action in actions:
        try:
            key = int(action["id"])
            server_id, state = int(action["server"]), RealServer.State(action["state"])
            at = datetime.datetime.fromisoformat(str(action["at"]))
            if at.tzinfo is None:
                raise ValueError("no time zone")
        except (KeyError, TypeError, ValueError):
            continue
        decided.append(key)
        if server_id not in latest or at >= latest[server_id][1]:
            latest[server_id] = (state, at, str(action.get("user", ""))[:100])
    for server_id, (state, at, user) in latest.items():
        with transaction.atomic():
            server = RealServer.objects.select_related("service").filter(pk=server_id).first()
            if server is None:
                skipped.append(f"real server {server_id} no longer exists")
                continue
            stamp = GenerationStamp.objects.filter(number=server.changed_generation).first()
            if stamp is not None and stamp.at > at:
                skipped.append(f"{server.label} was changed here later")
                continue
            generation = cluster_services.do_set_state(server, state,
                                                       f"{user} on the Secondary")
            # This change is as old as the action, for the next comparison.
            GenerationStamp.objects.update_or_create(number=generation, defaults={"at": at})
    return 200, {"decided": decided, "skipped": skipped, "state": vrrp_state()}


def loads(body):
    """A JSON object from a request body, or None."""
    try:
        data = json.loads(body or b"{}")
    except (ValueError, UnicodeDecodeError):
        return None
    return data if isinstance(data, dict) else None
