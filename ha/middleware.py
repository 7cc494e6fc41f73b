"""On a Secondary, Cluster Configuration is read-only: its configuration is the Primary's and
the next replication would overwrite a local change anyway.

A middleware rather than a decorator on each view because the rule is about a whole menu (the
`cluster:` URL names, Health Check Scripts included, whatever views are added later), owned by
the HA app, without touching the views of clusters or healthchecks. It refuses every POST to a
`cluster:` URL but the HA page's own, and Backup & Restore's restore and History's roll-back
(a Primary's restore and roll-back replicate like any change), with the words the pages show.

The exception is the guide's 7.2 actions on System Overview (Halt, Drain, Online:
`overview:set-state`), which work on whichever node is asked: the view applies them here at
once; this middleware then queues them (ha.models.PendingAction) for the Primary.
"""

import contextlib

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import redirect
from django.urls import Resolver404, resolve

from clusters.models import RealServer
from core.workers import BROKER_ERRORS

from . import replication, secondary
from .tasks import catch_up

SET_STATE = "overview:set-state"


def _url_name(request):
    try:
        match = resolve(request.path_info)
    except Resolver404:
        return None, {}
    return match.view_name, match.kwargs


def _changes_replicated_configuration(name, request):
    """Whether this POST would change what the Primary replicates: Cluster Configuration (but
    the HA page), the 7.2 actions, and a restore or a roll-back of the configuration (on a
    Secondary the next replication would silently undo them, or never come)."""
    if name is None or name.startswith("cluster:ha"):
        return False
    return name.startswith("cluster:") or \
        name in (SET_STATE, "maintenance:roll-back", "maintenance:passwords",
                 "maintenance:user-add", "maintenance:user-edit", "maintenance:user-remove") or \
        (name == "maintenance:backup-restore" and "restore" in request.POST)


def secondary_read_only(get_response):
    def middleware(request):
        if request.method != "POST" or not request.user.is_authenticated:
            return get_response(request)
        name, kwargs = _url_name(request)
        if not _changes_replicated_configuration(name, request):
            return get_response(request)
        primary = secondary.primary_of_this_secondary()
        if primary is None:
            return get_response(request)
        if name == SET_STATE:
            return _queue_local_action(request, kwargs, get_response)
        text = f"Not changed: {secondary.notice(primary)}"
        if getattr(request, "htmx", False):
            response = HttpResponse(text, status=403, content_type="text/plain; charset=utf-8")
            messages.error(request, text)
            response["HX-Refresh"] = "true"
            return response
        messages.error(request, text)
        # back to the page the form was on (a roll-back's URL takes POSTs only)
        return redirect("maintenance:history" if name == "maintenance:roll-back" else request.path)

    return middleware


def _queue_local_action(request, kwargs, get_response):
    """Let the view apply the Halt/Drain/Online here, then queue it for the Primary if the
    server now is in the state asked for."""
    response = get_response(request)
    state = request.POST.get("state", "")
    if response.status_code < 400 and state in RealServer.State.values and \
            RealServer.objects.filter(pk=kwargs.get("pk"), state=state).exists():
        replication.do_queue_local_action(kwargs["pk"], state, request.user)
        with contextlib.suppress(*BROKER_ERRORS):  # the catch-up (beat, 2 s) sends it later
            catch_up.apply_async()
    return response
