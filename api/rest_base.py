"""What the REST API's resources share: the key authentication with its role check, the
generation headers, binding JSON to the WebUI's forms, refusals in words (api.rest)."""

import json

import redis
from django import forms
from django.conf import settings
from django.core.exceptions import FieldDoesNotExist, RequestDataTooBig
from django.forms.models import model_to_dict
from django.utils.html import strip_tags
from ninja.security import HttpBearer

from clusters import runtime as cluster_runtime
from clusters.models import ConfigGeneration
from core import roles
from ha import secondary

from . import keys

REDIS_DOWN = (redis.RedisError, OSError, ValueError)  # ValueError: a damaged status record
NO_KEY = ("No valid API key: send it as \u201cAuthorization: Bearer <key>\u201d. Keys are made "
          "under Local Configuration \u203a API Keys; a revoked key, or one whose user was "
          "removed or disabled, is refused.")


class Refused(Exception):
    """An answer in words: `errors` is {field: [words]} ("__all__" for none)."""

    def __init__(self, status, errors):
        super().__init__(errors)
        self.status, self.errors = status, errors


def refuse(status, words, field="__all__"):
    raise Refused(status, {field: [words]})


class ApiKeyAuth(HttpBearer):
    """The key's user (api.keys.user_for), after its role is checked against core.roles.API
    for this URL and method."""

    def __call__(self, request):
        user = keys.user_for(request)
        if user is None:
            return None
        name = request.resolver_match.view_name
        role = roles.role_of(user)
        if not roles.api_allows(role, name, request.method):
            refuse(403, roles.api_refusal(role, name, request.method))
        return user

    def authenticate(self, request, token):  # pragma: no cover - __call__ does it all
        return keys.authenticate(token)


def with_generation(response):
    """The configuration generation saved and, when Redis answers, the one live."""
    response["X-Config-Generation"] = str(ConfigGeneration.current())
    try:
        applied = cluster_runtime.read_status().applied_generation
    except REDIS_DOWN:  # the apply state resource says why
        applied = None
    if applied is not None and applied >= 0:
        response["X-Config-Applied"] = str(applied)
    return response



def json_body(request):
    """The request's JSON object, or a refusal in words (400; 413 above Django's limit)."""
    try:
        raw = request.body
    except RequestDataTooBig:
        refuse(413, f"The body is larger than {settings.DATA_UPLOAD_MAX_MEMORY_SIZE} bytes; "
                    "nothing was changed.")
    if not raw.strip():
        return {}
    try:
        payload = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as error:
        refuse(400, f"The body is not JSON ({error}); nothing was changed.")
    if not isinstance(payload, dict):
        refuse(400, "The body must be a JSON object of field names and values; nothing was "
                    "changed.")
    return payload


def _stored_values(form_class, instance, initial):
    """What the form would show: the instance's values (the model's defaults for a new one),
    else the given or the fields' initial values — without building an unbound form (a batch
    binds thousands)."""
    fields = form_class.base_fields
    values = model_to_dict(instance, fields=list(fields)) if instance is not None else {}
    for name, field in fields.items():
        if name not in values:
            values[name] = (initial or {}).get(name, field.initial)
    return values


def bind(form_class, payload, instance=None, **kwargs):
    """`form_class` bound to the stored values (or the model's defaults for a new object)
    overlaid with `payload`: a partial update changes only the fields it names, and the form
    validates the whole. Unknown fields and non-scalar values are refused, not ignored."""
    fields = form_class.base_fields
    unknown = sorted(set(payload) - set(fields))
    errors = {name: [f"There is no field {name!r}: the fields are "
                     f"{', '.join(fields)}."] for name in unknown}
    for name, value in payload.items():
        if name in fields and isinstance(value, dict | list):
            errors[name] = ["Enter one value (text, a number, true/false or null), not a "
                            "list or an object."]
    if errors:
        raise Refused(400, errors)
    data = _stored_values(form_class, instance, kwargs.get("initial"))
    data.update({name: "" if value is None else value for name, value in payload.items()})
    if instance is not None:
        return form_class(data, instance=instance, **kwargs)
    return form_class(data, **kwargs)


def form_errors(form):
    return {name: [str(message) for message in messages]
            for name, messages in form.errors.items()}


def valid(form):
    """The form, valid; else its errors in its own words (400)."""
    if not form.is_valid():
        raise Refused(400, form_errors(form))
    return form


def refuse_on_a_secondary(request):
    """On a Secondary, the configuration is the Primary's (as the WebUI's Cluster
    Configuration, ha.middleware.secondary_read_only): a write is refused in its words. A
    batch asks once, not for each of its operations."""
    if getattr(request, "in_batch", False):
        return
    primary = secondary.primary_of_this_secondary()
    if primary is not None:
        refuse(403, f"Not changed: {secondary.notice(primary)}")


def generation_fields():
    """({the generation saved, the one applied, what that makes the saved one}, the apply
    status read from Redis or None when Redis does not answer)."""
    saved = ConfigGeneration.current()
    try:
        status = cluster_runtime.read_status()
    except REDIS_DOWN as error:
        return {"generation": saved, "applied_generation": None, "state": "unknown",
                "error": f"Redis does not answer ({error}): the applied generation cannot be "
                         "read."}, None
    state = status.state_for(saved)
    return {"generation": saved, "applied_generation": status.applied_generation,
            "state": state, "error": status.error if state == "failed" else ""}, status




def _field_schema(name, field, model):
    """The JSON schema of one form field, for the OpenAPI document (the form validates)."""
    if isinstance(field, forms.BooleanField):
        schema = {"type": "boolean"}
    elif isinstance(field, forms.ModelChoiceField):
        schema = {"type": ["integer", "null"], "description": "An id."}
    elif isinstance(field, forms.IntegerField):
        schema = {"type": ["integer", "null"] if not field.required else "integer"}
    elif isinstance(field, forms.ChoiceField):
        schema = {"type": "string", "enum": [value for value, _ in field.choices if value != ""]}
    else:
        schema = {"type": "string"}
    words = strip_tags(str(field.help_text or "")) or str(field.label or name)
    schema["description"] = (schema.get("description", "") + " " + words).strip()
    schema["title"] = str(field.label or name)
    if model is not None:
        try:
            model_field = model._meta.get_field(name)
        except FieldDoesNotExist:
            model_field = None
        if model_field is not None and model_field.has_default() and \
                not callable(model_field.default):
            schema["default"] = model_field.default
    return schema


def body_schema(form_class, partial=False):
    """The request body of an operation, described from the WebUI's form itself (so the
    document cannot drift from the rules): openapi_extra for ninja."""
    model = getattr(getattr(form_class, "_meta", None), "model", None)
    properties = {name: _field_schema(name, field, model)
                  for name, field in form_class.base_fields.items()}
    required = [] if partial else [
        name for name, field in form_class.base_fields.items()
        if field.required and "default" not in properties[name]]
    schema = {"type": "object", "properties": properties, "additionalProperties": False}
    if required:
        schema["required"] = required
    return {"requestBody": {"required": not partial, "content": {
        "application/json": {"schema": schema}}}}
