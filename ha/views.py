"""Cluster Configuration › High-Availability Configuration, and the JSON endpoints the other
node of the pair calls (`peer_*`: no session and no CSRF token, since they authenticate
themselves — the pairing call by the loadbalancer user's password through the login's
throttle, every later call by the pair's HMAC signature)."""

import functools

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_not_required
from django.http import JsonResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from clusters.models import ConfigGeneration
from core.runtime import supervisor_state
from core.workers import WorkerUnavailable, send_task

from . import pairing, peer, replication, split_brain, tasks
from .forms import PairForm
from .models import Pair, PendingAction
from .state import vrrp_state

RUNNING_JOB = (Pair.Status.PAIRING, Pair.Status.CONFIGURING, Pair.Status.BREAKING)
DAEMONS = ("keepalived", "conntrackd")


def high_availability(request):
    """Create a Clustered Pair (standalone), the pairing's progress (polled), or the pair."""
    pair = Pair.load()
    form = PairForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        values = form.cleaned_data
        username = request.user.get_username()
        try:
            pairing.do_start_pairing(
                values["local_ip"], values["peer_ip"], values["password"], request.user,
                send=lambda sealed: send_task(tasks.pair, values["local_ip"], values["peer_ip"],
                                              sealed, username))
        except pairing.PairingRefused as refused:
            form.add_error(refused.field, str(refused))
        else:
            return redirect("cluster:ha")
    elif request.method == "GET" and not pair.paired and pair.status == Pair.Status.FAILED:
        # The worker's refusal, next to the field it is about, on the form as filled in.
        form = PairForm(initial={"local_ip": pair.local_ip, "peer_ip": pair.peer_ip})
    context = _context(pair, form)
    if request.htmx and request.method == "GET":
        response = render(request, "ha/job.html", context)
        if pair.status not in RUNNING_JOB:
            response.status_code = 286  # htmx stops polling
            response["HX-Refresh"] = "true"  # the whole page shows the result
        return response
    return render(request, "ha/high_availability.html", context)


def _context(pair, form):
    running = _daemons_running() if pair.paired else {}
    return {
        "page_title": "High-Availability Configuration", "pair": pair, "form": form,
        "job_running": pair.status in RUNNING_JOB,
        "local_state": vrrp_state(stepped_down=pair.stepped_down),
        "split_brain": split_brain.describe(pair) if pair.paired else "",
        "peer_state": _peer_state(pair), "generation": ConfigGeneration.current(),
        "pending": PendingAction.objects.count(), "daemons": running,
        "daemons_running": bool(running) and all(running.values()),
        "failed_field": pair.message_field if pair.status == Pair.Status.FAILED else "",
        "https_port": settings.LBADMIN_HTTPS_PORT,
    }


def _peer_state(pair):
    """The other node's state as last seen; "down" when it has not been heard of lately."""
    if not pair.last_contact or (timezone.now() - pair.last_contact).total_seconds() > \
            replication.STALE_AFTER:
        return "down"
    return pair.peer_state or "down"


def _daemons_running():
    """{name: running} for keepalived and conntrackd, as the supervisor reports them (a local
    socket; no network)."""
    state = supervisor_state() or {}
    services = state.get("services", {})
    return {name: bool(services.get(name, {}).get("running")) for name in DAEMONS}


@require_POST
def break_pair(request):
    username = request.user.get_username()
    try:
        pairing.do_start_break(request.user, send=lambda: send_task(tasks.break_pair, username))
    except pairing.PairingRefused as refused:
        messages.error(request, str(refused))
    return redirect("cluster:ha")


# -- the other node's calls --------------------------------------------------------------------

def _answer(status, data):
    return JsonResponse(data, status=status)


def peer_endpoint(view):
    """No session, no CSRF token (nobody's browser calls these), POST only."""
    return csrf_exempt(login_not_required(require_POST(view)))


@peer_endpoint
def peer_pair(request, authentication_form):
    """The pairing call. `authentication_form` is the login's (appliance.urls passes
    appliance.login.ThrottledAuthenticationForm), so a password tried here counts against the
    same per-address limit as the login page's, and is logged like a refused login."""
    data = replication.loads(request.body)
    if data is None:
        return _answer(400, {"error": "The request is not a JSON object."})
    if data.get("username") != settings.APPLIANCE_USER:
        return _answer(403, {"error": f"Only the {settings.APPLIANCE_USER} user can pair.",
                             "field": "password"})
    form = authentication_form(request, data={"username": settings.APPLIANCE_USER,
                                              "password": str(data.get("password", ""))})
    if not form.is_valid():
        throttled = form.has_error("__all__", "throttled")
        reason = " ".join(form.non_field_errors()) or "the password is missing"
        return _answer(429 if throttled else 403, {
            "error": reason if throttled else f"Wrong password for the "
                                              f"{settings.APPLIANCE_USER} user.",
            "field": "password"})
    try:
        return _answer(200, pairing.do_accept_pairing(data))
    except pairing.PairingRefused as refused:
        return _answer(409, {"error": str(refused), "field": refused.field or ""})


def signed(view):
    """A call from the paired node: its HMAC signature and timestamp must hold."""

    @functools.wraps(view)
    def checked(request):
        pair = Pair.load()
        refused = peer.refusal_of_signature(
            pair.secret if pair.paired else "", request.headers.get(peer.TIMESTAMP_HEADER),
            request.headers.get(peer.SIGNATURE_HEADER), request.body)
        if refused:
            return _answer(403, {"error": f"Refused: {refused}."})
        data = replication.loads(request.body)
        if data is None:
            return _answer(400, {"error": "The request is not a JSON object."})
        return view(request, pair, data)

    return peer_endpoint(checked)


@signed
def peer_replicate(request, pair, data):
    if pair.role != Pair.Role.SECONDARY:
        return _answer(409, {"error": "This appliance is not the Secondary."})
    return _answer(*replication.do_apply_replication(data))


@signed
def peer_actions(request, pair, data):
    if pair.role != Pair.Role.PRIMARY:
        return _answer(409, {"error": "This appliance is not the Primary."})
    return _answer(*replication.do_accept_actions(data))


@signed
def peer_status(request, pair, data):
    replication.note_contact(pair, data)
    return _answer(200, {"state": vrrp_state(), "role": pair.role,
                         "generation": ConfigGeneration.current(),
                         "pending": PendingAction.objects.count()})


@signed
def peer_break(request, pair, data):
    user = f"{settings.APPLIANCE_USER}@{pair.peer_ip}"
    pairing.do_unpair_locally(user, f"the other node ({pair.peer_ip}) broke the clustered pair")
    try:  # the worker waits for keepalived to stop, then places this node's addresses
        send_task(tasks.break_pair, user)
    except WorkerUnavailable as problem:
        return _answer(200, {"ok": True, "warning": f"Broken here, but the addresses are not "
                                                    f"placed yet: {problem}"})
    return _answer(200, {"ok": True})
