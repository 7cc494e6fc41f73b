"""The commercial appliance's API v2: `POST /api/v2/`, a batch of lbcli calls.

    curl -k -u loadbalancer:<password> -H "X_LB_APIKEY: $(printf %s "$KEY" | base64 -w0)" \\
         -X POST https://<appliance>:9443/api/v2/ \\
         -d '{"lbcli": [{"action": "halt", "vip": "VNA", "rip": "PrimaryCluster"}]}'

Authentication is the commercial appliance's pair: HTTP Basic credentials of a WebUI user AND
an API key of that same user in `X_LB_APIKEY` (or `X-LB-APIKEY`), base64-encoded (a key sent
as is is taken too). The key is checked first: a password is only ever tried for a request
that holds a valid key, so Basic cannot be used to guess passwords without one (and the
login's throttle is not needed here). The key's user must be the Basic user — a key is its
user's, and acts with that user's role (core.roles) and name in the User Log ("<user> (API key
<name>)").

The calls run as one batch (api.lbcli.run): one transaction, one generation, one apply, one
revision. The answer is the commercial shape, misspelling included:
`{"lbapi": [{"itteration": [{"lbcli": [{"action": …, "status": …, "error": …}]}]}]}`.
Refusals of the whole request come in that shape too, with one `fatal` entry: 400 for a body
that is not `{"lbcli": [...]}`, 401 without a valid key and password, 403 for a call the
key's role may not make (each such call says why; nothing ran), 405 for anything but POST,
413 for a body over MAX_BODY (refused from its Content-Length, before it is read).
"""

import base64
import binascii
import json

from django.contrib.auth import authenticate
from django.contrib.auth.decorators import login_not_required
from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt

from core import roles
from network.views import browser_address

from . import keys, lbcli

# 1,000 services with two real servers each are about 0.5 MB; 16 MiB is ~30,000 calls.
MAX_BODY = 16 * 1024 * 1024
REALM = 'Basic realm="lbadmin API v2"'
NO_KEY = ("API v2 needs an API key (Local Configuration › API Keys) in the X_LB_APIKEY header, "
          "base64-encoded, and the HTTP Basic credentials of the key's user.")
WRONG_KEY = "The API key is not valid: unknown, revoked, or its user is disabled."
WRONG_USER = ("The HTTP Basic credentials are not those of the API key's user: the user name "
              "or password is wrong.")


def shaped(answers, status=200):
    return JsonResponse({"lbapi": [{"itteration": [{"lbcli": answers}]}]}, status=status)


def refused(status, error):
    response = shaped([{"action": "", "status": lbcli.FATAL, "error": error}], status)
    if status == 401:
        response["WWW-Authenticate"] = REALM
    return response


def basic_credentials(request):
    """(user name, password) of the Authorization: Basic header, or None."""
    scheme, _, value = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")
    if scheme.lower() != "basic" or not value.strip():
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    name, colon, password = decoded.partition(":")
    return (name, password) if colon else None


def calls_of(body):
    """The body's list of calls, or raise ValueError with what is wrong, in words."""
    try:
        document = json.loads(body)
    except (UnicodeDecodeError, ValueError) as problem:
        raise ValueError(f"The body is not JSON ({problem}): send "
                         "{\"lbcli\": [{\"action\": …}, …]}.") from None
    calls = document.get("lbcli") if isinstance(document, dict) else None
    if isinstance(calls, dict):  # one call, as some scripts send it
        calls = [calls]
    if not isinstance(calls, list) or not calls:
        raise ValueError("The body must be {\"lbcli\": [{\"action\": …}, …]} with at least "
                         "one call.")
    if len(calls) > lbcli.MAX_CALLS:
        raise ValueError(f"At most {lbcli.MAX_CALLS:,} calls in one request.")
    return calls


@csrf_exempt  # a key, not a session cookie, authenticates: nothing for CSRF to protect
@login_not_required  # outside the WebUI's login and role middleware: checked here
def api_v2(request):
    if request.method != "POST":
        response = refused(405, "API v2 takes POST only.")
        response["Allow"] = "POST"
        return response
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return refused(400, "The Content-Length is not a number.")
    if length > MAX_BODY:
        return refused(413, f"The body is {length:,} bytes: API v2 takes at most "
                            f"{MAX_BODY // (1024 * 1024)} MiB in one request (split the "
                            "calls into several).")
    key = keys.key_for(request)
    if key is None:
        has_header = bool(request.META.get("HTTP_X_LB_APIKEY"))
        return refused(401, WRONG_KEY if has_header else NO_KEY)
    credentials = basic_credentials(request)
    if credentials is None:
        return refused(401, NO_KEY)
    name, password = credentials
    user = keys.user_for(request)
    if name != user.get_username() or authenticate(request, username=name,
                                                   password=password) is None:
        return refused(401, WRONG_USER)
    try:
        calls = calls_of(request.read(MAX_BODY + 1))
    except ValueError as problem:
        return refused(400, str(problem))
    answers, role_refused = lbcli.run(calls, user, roles.role_of(user), via="API v2",
                                      arrived_on=browser_address(request))
    return shaped(answers, status=403 if role_refused else 200)
