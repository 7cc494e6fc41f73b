"""lbadmin's REST API (/api/v1/): django-ninja, OpenAPI 3 at /api/v1/openapi.json.

Why django-ninja rather than Django REST framework: the writes here must not validate
anything themselves (one validation path: they bind the JSON to the WebUI's own Django forms
and call the same do_* actions), so DRF's serializers — its centre — would be a second set of
rules to keep in step; ninja is a thin, typed router with the OpenAPI document built in,
pydantic only for the answers' shapes, and no other dependency.

Every operation:
- authenticates by API key (api.keys: `Authorization: Bearer <key>`, or API v2's header) —
  never by session, so the session's CSRF rules do not apply and a session alone gets 401;
- checks the key's user's role by core.roles.API (the WebUI URL whose rule applies), in the
  authentication itself, so no operation can forget it: 403 in words;
- answers with the configuration generation saved (`X-Config-Generation`) and the one live
  (`X-Config-Applied`, when Redis answers), so a client can wait for "applied";
- refuses in the forms' words: `{"errors": {"field": ["..."]}}` with 400 (`__all__` for
  what belongs to no field), nothing saved.

The resources are in api.rest_clusters, api.rest_system and api.rest_batch, what they share
in api.rest_base; this module holds the API itself, its answers to errors and the apply state.
"""

from django.http import Http404
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError
from ninja.errors import ValidationError as NinjaValidationError

from . import rest_batch, rest_clusters, rest_system
from .rest_base import NO_KEY, ApiKeyAuth, Refused, generation_fields, with_generation


class RestApi(NinjaAPI):
    def create_response(self, request, data, *, status=None, temporal_response=None):
        response = super().create_response(request, data, status=status,
                                           temporal_response=temporal_response)
        if getattr(request, "in_batch", False):  # an operation of a batch: the batch says it
            return response
        return with_generation(response)


DESCRIPTION = """\
lbadmin's own REST API. Authenticate with an API key made under **Local Configuration ›
API Keys** (`Authorization: Bearer lba_…`); the key has its user's role (config, maint,
report). Writes go through the same forms and actions as the WebUI: a refusal is
`{"errors": {"field": ["words"]}}` with status 400, in the WebUI's words. Every answer
carries `X-Config-Generation` (the configuration saved) and `X-Config-Applied` (the one
live in the data plane): after a change, wait until `GET /api/v1/apply-state` says
`applied` (or the headers agree). The commercial appliance's API v2 is at `/api/v2/`.
"""

api = RestApi(
    title="lbadmin REST API", version="1", description=DESCRIPTION,
    urls_namespace="api-v1", auth=ApiKeyAuth(), docs_url=None,  # the docs: support:rest-api
)


def errors_response(request, status, errors):
    return api.create_response(request, {"errors": errors}, status=status)


@api.exception_handler(Refused)
def _refused(request, exc):
    response = errors_response(request, exc.status, exc.errors)
    if exc.status == 401:
        response["WWW-Authenticate"] = 'Bearer realm="lbadmin"'
    return response


@api.exception_handler(AuthenticationError)
def _no_key(request, exc):
    response = errors_response(request, 401, {"__all__": [NO_KEY]})
    response["WWW-Authenticate"] = 'Bearer realm="lbadmin"'
    return response


@api.exception_handler(Http404)
def _not_found(request, exc):
    return errors_response(request, 404, {"__all__": [str(exc) or "Not found."]})


@api.exception_handler(HttpError)
def _http_error(request, exc):
    return errors_response(request, exc.status_code, {"__all__": [str(exc)]})


@api.exception_handler(NinjaValidationError)
def _bad_parameters(request, exc):
    """Path and query parameters (the bodies are the forms'): {"id": ["..."]}."""
    errors = {}
    for error in exc.errors:
        field = str(error.get("loc", ["", "__all__"])[-1])
        errors.setdefault(field, []).append(error.get("msg", "Invalid value."))
    return errors_response(request, 400, errors)


@api.get("/apply-state", url_name="apply-state", tags=["apply state"],
         summary="The configuration generation saved and applied")
def apply_state(request):
    """`state` is `applied` once the saved generation is live in the data plane, `applying`
    until then, `failed` (with `error`) if the kernel refused it; `unknown` (with `error`)
    while Redis does not answer."""
    fields, status = generation_fields()
    return fields | {
        "failed_generation": status.failed_generation if status else None,
        "unplaced": sorted(status.unplaced) if status else [],
        "apply_milliseconds": status.milliseconds if status else None}


api.add_router("/", rest_clusters.router)
api.add_router("/", rest_system.router)
api.add_router("/", rest_batch.router)
