"""Making and breaking the clustered pair (the guide's 10.1.2).

Pairing, started on the Primary's page (`do_start_pairing`), runs in its maintenance worker
(`do_pair`): an outbound call never runs inside a web request. The worker POSTs once to the
peer's WebUI (`pair/`, unsigned) with the loadbalancer user's password, its half of the
pairing secret, its version and its WebUI certificate's fingerprint; the peer checks the
password through the login's throttle (`do_accept_pairing` after the view's authentication
form), refuses in words when it cannot become a Secondary, and answers with its half of the
secret, its version and hostname. The Primary pins the certificate the answer came over. The
password is passed to the worker sealed (Fernet under a key derived from SECRET_KEY), sent
once, and never stored or logged.
"""

import base64
import hashlib
import ipaddress
import secrets
import socket
import time

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from clusters.models import FloatingIP, VirtualService
from clusters.tasks import apply_dataplane
from core.audit import record_audit
from core.runtime import supervisor_state
from core.version import __version__
from core.workers import WorkerUnavailable, send_on_commit
from maintenance.firewall_tasks import apply_firewall_from_database
from network.models import NetworkConfiguration

from . import peer, vrrp
from .models import Pair, PendingAction
from .replication import drop_replicated_configuration, replicate
from .state import known, vrrp_state

ATTEMPTING = "Attempting to pair.."


class PairingRefused(Exception):
    """Pairing cannot go on; the message says why (and `field`, which form field it is
    about, so the page shows it there)."""

    def __init__(self, message, field=None):
        super().__init__(message)
        self.field = field


# -- the password on its way to the worker ------------------------------------------------

def _fernet():
    key = hashlib.sha256(b"lbadmin ha pairing password\n" + settings.SECRET_KEY.encode())
    return Fernet(base64.urlsafe_b64encode(key.digest()))


def seal(password):
    """The password as the task carries it through Redis: encrypted, readable only by this
    appliance's processes (they share SECRET_KEY), and only for TTL seconds."""
    return _fernet().encrypt(password.encode()).decode()


SEAL_TTL = 300


def unseal(token):
    try:
        return _fernet().decrypt(token.encode(), ttl=SEAL_TTL).decode()
    except (InvalidToken, ValueError):
        raise PairingRefused("The pairing request expired before the maintenance worker took "
                             "it: enter the password again.", field="password") from None


# -- this appliance's addresses --------------------------------------------------------------

def own_addresses():
    """This appliance's own interface addresses, as Local Configuration holds them (the
    dataplane worker records what the system configured at its first start): never the VIPs
    or floating IPs, which move between the nodes. Loopback and link-local ones are left out."""
    stored = NetworkConfiguration.objects.filter(pk=1).first()
    found = []
    for _name, values in sorted((stored.interfaces if stored else {}).items()):
        for cidr in values.get("addresses", []):
            try:
                ip = ipaddress.ip_interface(cidr).ip
            except ValueError:
                continue
            if not (ip.is_loopback or ip.is_link_local) and str(ip) not in found:
                found.append(str(ip))
    return found


def local_refusal(local_ip, peer_ip):
    """Why a pairing from `local_ip` to `peer_ip` is refused before anyone is asked (words,
    field), or None."""
    if str(local_ip) not in own_addresses():
        return (f"{local_ip} is not one of this appliance's addresses (Local Configuration › "
                "Network Interface Configuration).", "local_ip")
    if str(peer_ip) == str(local_ip):
        return "The peer's address is this appliance's own: give the other appliance's.", \
            "peer_ip"
    return None


def _vip_count_words():
    services, floating = VirtualService.objects.count(), FloatingIP.objects.count()
    parts = [f"{services} virtual service{'s' if services != 1 else ''}" if services else "",
             f"{floating} floating IP{'s' if floating != 1 else ''}" if floating else ""]
    return " and ".join(p for p in parts if p)


# -- the Primary -------------------------------------------------------------------------------

def do_start_pairing(local_ip, peer_ip, password, user, send):
    """The page's "Add new node": checked here, then `send(sealed password)` hands the call
    to the maintenance worker (the view passes core.workers.send_task of ha.tasks.pair). The
    page then polls the Pair row's status. PairingRefused, in words, when it cannot start."""
    with transaction.atomic():
        pair = Pair.objects.select_for_update().get(pk=Pair.load().pk)
        if pair.paired:
            raise PairingRefused(f"This appliance is already the {pair.get_role_display()} "
                                 "of a clustered pair: break it first.")
        if pair.status == Pair.Status.PAIRING:
            raise PairingRefused("A pairing is already under way.")
        refused = local_refusal(local_ip, peer_ip)
        if refused:
            raise PairingRefused(*refused)
        pair.local_ip, pair.peer_ip = str(local_ip), str(peer_ip)
        pair.status, pair.message, pair.message_field = Pair.Status.PAIRING, ATTEMPTING, ""
        pair.last_error = ""
        pair.save()
        record_audit(user, f"started pairing with {peer_ip} from {local_ip}")
    try:
        send(seal(password))
    except WorkerUnavailable as problem:
        fail_pairing(f"Not paired: the maintenance worker cannot be reached ({problem}).")
        raise PairingRefused(f"Not paired: the maintenance worker cannot be reached "
                             f"({problem}).") from None
    return pair


def fail_pairing(message, field=""):
    return _fail(Pair.load(), message, field)


def _fail(pair, message, field=""):
    pair.status, pair.message, pair.message_field = Pair.Status.FAILED, message, field or ""
    pair.save(update_fields=["status", "message", "message_field"])
    return pair


def do_pair(local_ip, peer_ip, password, user):
    """The whole pairing from the Primary's side (the worker runs it; the lab and the tests
    may call it directly). Returns the Pair row: status PAIRED, or FAILED with the reason."""
    pair = Pair.load()
    if pair.paired:
        return _fail(pair, f"This appliance is already the {pair.get_role_display()} of a "
                           "clustered pair.")
    refused = local_refusal(local_ip, peer_ip)
    if refused:
        return _fail(pair, *refused)
    pair.local_ip, pair.peer_ip = str(local_ip), str(peer_ip)
    pair.status, pair.message, pair.message_field = Pair.Status.PAIRING, ATTEMPTING, ""
    pair.save()
    my_part = secrets.token_hex(32)
    virtual_router_id = secrets.randbelow(255) + 1
    try:
        answer = peer.call_unsigned(peer_ip, "pair", {
            "username": settings.APPLIANCE_USER, "password": password,
            "primary_ip": str(local_ip), "secondary_ip": str(peer_ip),
            "fingerprint": peer.own_fingerprint(), "version": __version__,
            "hostname": _hostname(), "secret_part": my_part,
            "virtual_router_id": virtual_router_id})
    except peer.PeerError as problem:
        return _fail(pair, f"The peer {peer_ip} cannot be reached: {problem}", "peer_ip")
    finally:
        password = None  # noqa: F841 - not kept a moment longer than the call
    if answer.status != 200:
        return _fail(pair, f"The peer {peer_ip} refused: "
                           f"{answer.data.get('error') or f'HTTP {answer.status}'}",
                     answer.data.get("field", "") if answer.data.get("field") in
                     ("password", "peer_ip") else "")
    their_part = str(answer.data.get("secret_part", ""))
    if len(their_part) != 64 or not answer.fingerprint:
        return _fail(pair, f"The peer {peer_ip} answered without its half of the pairing "
                           "secret or its certificate: is it an lbadmin appliance?")
    reported = str(answer.data.get("fingerprint", ""))
    if reported and reported != answer.fingerprint:
        return _fail(pair, f"The certificate the peer {peer_ip} answered over is not the one it "
                           "says it has: someone is in between. Nothing was paired here.")
    with transaction.atomic():
        pair.role, pair.secret = Pair.Role.PRIMARY, combine(my_part, their_part)
        pair.peer_fingerprint = answer.fingerprint
        pair.peer_version = str(answer.data.get("version", ""))[:32]
        pair.peer_hostname = str(answer.data.get("hostname", ""))[:255]
        pair.virtual_router_id = virtual_router_id
        pair.status, pair.message = Pair.Status.CONFIGURING, "configuring"
        pair.generation_sent = pair.generation_acked = 0
        pair.last_error, pair.last_contact = "", timezone.now()
        pair.peer_state = known(answer.data.get("state"))
        pair.save()
        PendingAction.objects.all().delete()
        record_audit(user, f"paired this appliance (Primary, {local_ip}) with {peer_ip} "
                           f"(Secondary, {pair.peer_hostname})")
    _configure_vrrp(pair)
    replicate()
    pair.refresh_from_db()
    pair.status = Pair.Status.PAIRED
    pair.message = ""
    pair.save(update_fields=["status", "message"])
    return pair


def combine(primary_part, secondary_part):
    """The pairing secret: both halves, so neither node alone chooses it."""
    return hashlib.sha256(bytes.fromhex(primary_part) + bytes.fromhex(secondary_part)) \
        .hexdigest()


def _hostname():
    stored = NetworkConfiguration.objects.filter(pk=1).values_list("hostname", flat=True).first()
    return stored or socket.gethostname()


def _configure_vrrp(pair):
    """Write keepalived's and conntrackd's files and ask the supervisor to start them. A
    failure does not undo the pair (the configuration still replicates); it is shown."""
    send_on_commit(apply_firewall_from_database)  # the firewall lockdown admits the peer
    try:
        vrrp.configure(pair)
    except Exception as problem:  # noqa: BLE001 - any failure is shown on the page, in words
        Pair.objects.filter(pk=pair.pk).update(
            vrrp_error=f"keepalived/conntrackd were not started: {problem or type(problem)}")
    else:
        Pair.objects.filter(pk=pair.pk).update(vrrp_error="")


# -- the Secondary (peer) side -----------------------------------------------------------------

def _ip(value, what, field):
    try:
        return str(ipaddress.ip_address(str(value)))
    except ValueError:
        raise PairingRefused(f"The {what} “{str(value)[:60]}” is not an IP address.",
                             field) from None


@transaction.atomic
def do_accept_pairing(data):
    """The peer's side of pairing, once the view has checked the password. Returns the
    answer for the Primary; PairingRefused with the reason when this appliance cannot become
    its Secondary (nothing is changed then)."""
    pair = Pair.objects.select_for_update().get(pk=Pair.load().pk)
    if pair.paired:
        raise PairingRefused(f"{pair.local_ip} is already the {pair.get_role_display()} of a "
                             f"clustered pair with {pair.peer_ip}: break that pair first.",
                             "peer_ip")
    version = str(data.get("version", ""))
    if version != __version__:
        raise PairingRefused(f"It runs lbadmin {__version__[:32]} and this appliance "
                             f"{version[:32] or '(unknown)'}: update one so both run the same "
                             "release.")
    held = _vip_count_words()
    if held:
        raise PairingRefused(f"It already has {held}: a new Secondary must have none (the "
                             "Primary's configuration replaces it). Delete them there, or use a "
                             "fresh appliance.")
    primary_ip = _ip(data.get("primary_ip"), "Primary's address", "local_ip")
    secondary_ip = _ip(data.get("secondary_ip"), "peer's address", "peer_ip")
    if secondary_ip not in own_addresses():
        raise PairingRefused(f"{secondary_ip} is not one of its own addresses.", "peer_ip")
    if primary_ip in own_addresses():
        raise PairingRefused(f"{primary_ip} is one of its own addresses.", "local_ip")
    primary_part = str(data.get("secret_part", ""))
    fingerprint = str(data.get("fingerprint", "")).lower()
    try:
        router_id = int(data.get("virtual_router_id"))
        bytes.fromhex(primary_part)
    except (TypeError, ValueError):
        router_id = 0
    if len(primary_part) != 64 or not 1 <= router_id <= 255 or len(fingerprint) != 64:
        raise PairingRefused("The pairing request is incomplete (secret, virtual router id or "
                             "certificate fingerprint missing).")
    my_part = secrets.token_hex(32)
    pair.role, pair.local_ip, pair.peer_ip = Pair.Role.SECONDARY, secondary_ip, primary_ip
    pair.secret = combine(primary_part, my_part)
    pair.peer_fingerprint, pair.peer_version = fingerprint, version
    pair.peer_hostname = str(data.get("hostname", ""))[:255]
    pair.virtual_router_id = router_id
    pair.status, pair.message, pair.message_field = Pair.Status.PAIRED, "", ""
    pair.generation_sent = pair.generation_acked = 0
    pair.last_error, pair.last_contact, pair.peer_state = "", timezone.now(), "active"
    pair.save()
    PendingAction.objects.all().delete()
    record_audit(f"{settings.APPLIANCE_USER}@{primary_ip}",
                 f"paired this appliance (Secondary, {secondary_ip}) with {primary_ip} "
                 f"(Primary, {pair.peer_hostname})")
    transaction.on_commit(lambda: _configure_vrrp(Pair.load()))
    return {"secret_part": my_part, "version": __version__, "hostname": _hostname(),
            "fingerprint": peer.own_fingerprint(), "state": vrrp_state()}


# -- breaking the pair -------------------------------------------------------------------------

def do_start_break(user, send):
    """The page's "Break Clustered Pair": the worker tells the other node and breaks here."""
    pair = Pair.load()
    if not pair.paired:
        raise PairingRefused("This appliance is not in a clustered pair.")
    Pair.objects.filter(pk=pair.pk).update(status=Pair.Status.BREAKING,
                                           message="Breaking the clustered pair…")
    record_audit(user, f"asked to break the clustered pair with {pair.peer_ip}")
    try:
        send()
    except WorkerUnavailable as problem:
        Pair.objects.filter(pk=pair.pk).update(status=Pair.Status.PAIRED, message="")
        raise PairingRefused(f"Not broken: the maintenance worker cannot be reached "
                             f"({problem}).") from None


def do_break_pair(user):
    """Tell the other node (signed; an unreachable one is said, not waited for), return
    this one to standalone and, keepalived stopped, place the addresses here again. Returns
    what the page says."""
    pair = Pair.load()
    if not pair.paired:
        # The other node broke the pair (ha.views.peer_break sends this task then): what is
        # left is to place the addresses here once keepalived has stopped.
        reclaim_addresses()
        return "This appliance is not in a clustered pair."
    try:
        answer = peer.call(pair, "break", {"from": pair.local_ip})
        told = "" if answer.status == 200 else \
            f" The other node refused: {answer.data.get('error') or answer.status}."
    except peer.PeerError as problem:
        told = (f" The other node ({pair.peer_ip}) could not be told ({problem}): break the "
                "pair there too.")
    do_unpair_locally(user, f"broke the clustered pair with {pair.peer_ip}")
    reclaim_addresses()
    return f"The clustered pair is broken; this appliance is standalone.{told}"


def do_unpair_locally(user, action):
    """Back to standalone: keepalived and conntrackd stop; a Secondary also drops the
    replicated services, real servers and floating IPs (so it no longer holds or fights
    for the VIPs), after a revision that keeps them for History."""
    pair = Pair.load()
    was_secondary = pair.role == Pair.Role.SECONDARY
    with transaction.atomic():
        if was_secondary:
            drop_replicated_configuration(user)
        Pair.objects.filter(pk=pair.pk).update(
            role=Pair.Role.STANDALONE, secret="", peer_fingerprint="", peer_version="",
            peer_hostname="", status=Pair.Status.IDLE, message="", message_field="",
            generation_sent=0, generation_acked=0, last_error="", peer_state="",
            virtual_router_id=0, local_ip=None, peer_ip=None, last_contact=None)
        PendingAction.objects.all().delete()
        record_audit(user, action)
        send_on_commit(apply_firewall_from_database)  # the lockdown admits the peer no more
    try:
        vrrp.unconfigure()
    except Exception as problem:  # noqa: BLE001 - shown, the pair is broken anyway
        Pair.objects.filter(pk=pair.pk).update(
            vrrp_error=f"keepalived/conntrackd were not stopped: {problem or type(problem)}")
    else:
        Pair.objects.filter(pk=pair.pk).update(vrrp_error="")


RECLAIM_WAIT = 15  # seconds keepalived may take to stop before the addresses are placed anyway


def _keepalived_running():
    services = (supervisor_state() or {}).get("services", {})
    return bool(services.get("keepalived", {}).get("running"))


def reclaim_addresses(wait=RECLAIM_WAIT, sleep=time.sleep, clock=time.monotonic):
    """Standalone again: once keepalived has stopped (it removes the VIPs and floating IPs it
    held as it exits, so not before), a full apply, in which the dataplane worker places them
    itself again (core.pairing has no owner holding them now). Nothing else would: the
    configuration did not change, so no apply follows the break on its own, and the active
    node would be left holding no VIP. The maintenance worker runs this (ha.tasks)."""
    deadline = clock() + wait
    while _keepalived_running() and clock() < deadline:
        sleep(0.1)
    apply_dataplane.apply_async(kwargs={"full": True})
