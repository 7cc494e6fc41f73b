"""POST /api/v1/batch: many REST calls as one change — one transaction, one configuration
generation, one apply, one revision (api.batch) — all or nothing.

Each operation is the REST API's own operation, run in-process through the same view
(key, role, form, action, words), so a batch refuses exactly what the single calls refuse.
A path may name the id of an earlier operation's answer as `$<index>` (0-based), so one
batch can add a virtual service and its real servers."""

import json
import re

from django.http import HttpRequest
from django.urls import Resolver404, resolve
from ninja import Router, Schema

from .batch import batch
from .rest_base import Refused, json_body, refuse, refuse_on_a_secondary

router = Router()

PREFIX = "/api/v1"
# What a batch may hold: Cluster Configuration and System Overview's actions, whose changes
# are rows in the database. Calls with effects outside it (a restart, a restore, a resolver
# file written by a worker, an update) are made one at a time.
BATCHABLE = {"virtual-services", "virtual-service", "service-real-servers", "real-server",
             "real-servers", "real-server-state", "floating-ips", "floating-ip",
             "health-check-scripts", "health-check-script"}
METHODS = {"GET", "POST", "PATCH", "DELETE"}
REFERENCE = re.compile(r"\$(\d+)")


class Failed(Exception):
    """An operation was refused: the batch rolls back."""

    def __init__(self, index, status, errors):
        super().__init__(index)
        self.index, self.status, self.errors = index, status, errors


class Operation(Schema):
    method: str
    path: str
    body: dict | None = None


class BatchIn(Schema):
    operations: list[Operation]


class Result(Schema):
    status: int
    body: dict | list | None


class BatchOut(Schema):
    results: list[Result]


def _path(index, operation, results):
    def earlier(match):
        number = int(match.group(1))
        if number >= index or not isinstance(results[number]["body"], dict) or \
                "id" not in results[number]["body"]:
            raise Failed(index, 400, {"path": [
                f"${number} names no earlier operation's answer with an id."]})
        return str(results[number]["body"]["id"])

    return REFERENCE.sub(earlier, operation.get("path", "") if isinstance(operation, dict)
                         else "")


def _sub_request(request, method, path, body):
    """The operation as a request of its own, with the batch's key (already checked)."""
    sub = HttpRequest()
    sub.method, sub.path = method, path
    sub.path_info = path
    sub.META = {key: value for key, value in request.META.items()
                if key.startswith("HTTP_") or key in ("REMOTE_ADDR", "SERVER_NAME",
                                                      "SERVER_PORT", "wsgi.url_scheme")}
    sub._body = json.dumps(body).encode() if body is not None else b""
    sub.META["CONTENT_TYPE"] = "application/json"
    sub.META["CONTENT_LENGTH"] = str(len(sub._body))
    sub.user = getattr(request, "user", None)
    sub.api_key = getattr(request, "api_key", None)
    sub.in_batch = True  # no generation headers per operation: the batch's answer has them
    return sub


def _run(request, index, operation, results):
    if not isinstance(operation, dict):
        raise Failed(index, 400, {"__all__": ["Each operation is an object: method, path, "
                                              "body."]})
    method = str(operation.get("method", "")).upper()
    if method not in METHODS:
        raise Failed(index, 400, {"method": [f"Use one of {', '.join(sorted(METHODS))}."]})
    path = _path(index, operation, results)
    body = operation.get("body")
    if body is not None and not isinstance(body, dict):
        raise Failed(index, 400, {"body": ["The body is a JSON object of fields."]})
    full = PREFIX + path if path.startswith("/") else ""
    try:
        match = resolve(full.split("?", 1)[0])
    except Resolver404:
        match = None
    if match is None or match.namespace != "api-v1" or match.url_name not in BATCHABLE:
        raise Failed(index, 400, {"path": [
            f"{path or '(none)'} is not a path a batch may hold: virtual services, real "
            "servers and their actions, floating IPs, health-check scripts (e.g. "
            "/virtual-services)."]})
    sub = _sub_request(request, method, full, body)
    sub.resolver_match = match
    response = match.func(sub, *match.args, **match.kwargs)
    answer = json.loads(response.content) if response.content else None
    if response.status_code >= 400:
        errors = answer.get("errors") if isinstance(answer, dict) else None
        raise Failed(index, response.status_code,
                     errors or {"__all__": [f"Refused with status {response.status_code}."]})
    return {"status": response.status_code, "body": answer}


@router.post("/batch", url_name="batch", tags=["batch"],
             response={200: BatchOut, 400: dict, 403: dict, 404: dict, 413: dict},
             openapi_extra={"requestBody": {"required": True, "content": {"application/json": {
                 "schema": {"type": "object", "required": ["operations"], "properties": {
                     "operations": {"type": "array", "items": {
                         "type": "object", "required": ["method", "path"], "properties": {
                             "method": {"type": "string", "enum": sorted(METHODS)},
                             "path": {"type": "string", "examples": [
                                 "/virtual-services", "/virtual-services/$0/real-servers"]},
                             "body": {"type": "object"}}}}}}}}}})
def run_batch(request):
    """Many calls as one change: `{"operations": [{"method": "POST", "path":
    "/virtual-services", "body": {…}}, {"method": "POST", "path":
    "/virtual-services/$0/real-servers", "body": {…}}]}`. All are saved, with one
    configuration generation and one apply, or none is: the first refusal answers with its
    status, its index and its errors in the forms' words."""
    refuse_on_a_secondary(request)
    operations = json_body(request).get("operations")
    if not isinstance(operations, list) or not operations:
        refuse(400, "Send {\"operations\": [{\"method\": …, \"path\": …, \"body\": …}, …]}: a "
                    "list of one or more calls.", field="operations")
    results = []
    try:
        with batch(request.auth, "REST API"):
            for index, operation in enumerate(operations):
                results.append(_run(request, index, operation, results))
    except Failed as failed:
        errors = {"__all__": [f"Operation {failed.index} was refused, so nothing in the batch "
                              "was changed."]}
        errors.update({f"operations.{failed.index}.{field}": words
                       for field, words in failed.errors.items()})
        raise Refused(failed.status, errors) from None
    return {"results": results}
