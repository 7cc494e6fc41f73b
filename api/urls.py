"""The automation surface's URLs, outside /lbadmin/: /api/v1/ is lbadmin's REST API,
/api/v2/ the commercial appliance's compatible API. Both authenticate by API key (api.keys),
never by session, so the session's CSRF rules do not apply (core.roles.OPEN names them)."""

from django.contrib.auth.decorators import login_not_required
from django.http import JsonResponse
from django.urls import include, path, re_path

from . import keys, v2
from .optional import MISSING, api


def key_or_session(view):
    """The OpenAPI document: for a key (scripts, generators) or a WebUI session (the docs
    page reads it); anyone else gets 401 in words."""

    def guarded(request, *args, **kwargs):
        if request.user.is_authenticated or keys.key_for(request) is not None:
            return view(request, *args, **kwargs)
        return JsonResponse({"errors": {"__all__": [
            "The OpenAPI document needs an API key (Authorization: Bearer <key>) or a WebUI "
            "login."]}}, status=401)

    return guarded


@login_not_required
def rest_api_missing(request, rest=""):
    return JsonResponse({"errors": {"__all__": [MISSING]}}, status=503)


def rest_patterns():
    """ninja's URLs, each marked as outside the WebUI's login: the key is checked by the API
    itself. (The browsable document is a WebUI page: support:rest-api.) Without ninja, every
    /api/v1/ URL answers 503 with MISSING."""
    if api is None:
        return [re_path(r"^(?P<rest>.*)$", rest_api_missing, name="missing")]
    patterns = api.urls[0]
    for pattern in patterns:
        if pattern.name == "openapi-json":
            pattern.callback = key_or_session(pattern.callback)
        pattern.callback = login_not_required(pattern.callback)
    return patterns


urlpatterns = [
    path("v1/", include((rest_patterns(), "api-v1"))),
    path("v2/", v2.api_v2, name="api-v2"),  # the commercial appliance's API v2 (api.v2)
]
