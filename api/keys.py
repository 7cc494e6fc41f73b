"""API keys: made, checked and revoked here, and nowhere else.

A key is `lba_` and 43 characters of URL-safe base64 (32 random bytes). Only its SHA-256 is
stored: a fast hash is right for a secret nobody can guess (a slow one protects weak
passwords; it would only slow every API call here). The key is shown once, when made.

Both APIs find the caller here: the REST API (/api/v1/) reads `Authorization: Bearer <key>`,
the compatible API v2 (/api/v2/) the commercial appliance's `X_LB_APIKEY` header holding the
base64 of the key (gunicorn's header_map lets the underscore spelling through; `X-LB-APIKEY`
is the same header to Django). A call so authenticated carries no session, so the session's
CSRF rules do not apply to it; a session alone reaches neither API.
"""

import base64
import binascii
import hashlib
import hmac
import secrets
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from core import roles
from core.audit import record_audit

from .models import ApiKey

KEY_PREFIX = "lba_"
SHOWN_PREFIX = 12  # "lba_" and 8 characters: enough to tell keys apart in the list
LAST_USED_EVERY = timedelta(minutes=1)  # not a database write on every call


def digest(raw_key):
    return hashlib.sha256(raw_key.encode()).hexdigest()


def new_key_text():
    return KEY_PREFIX + secrets.token_urlsafe(32)


@transaction.atomic
def do_create_key(key, by):
    """Save `key` (an unsaved ApiKey with user and name, validated by its form) with a new
    secret; return the key's text, which is never stored and so can be shown only now."""
    raw = new_key_text()
    key.prefix = raw[:SHOWN_PREFIX]
    key.secret_hash = digest(raw)
    key.full_clean()
    key.save()
    record_audit(by, f"created API key {key.name} for user {key.user.get_username()} "
                     f"({roles.role_of(key.user)} role)")
    return raw


@transaction.atomic
def do_revoke_key(key, by):
    """Revoked keys are kept (the list shows when), never accepted again."""
    if key.revoked is None:
        ApiKey.objects.filter(pk=key.pk).update(revoked=timezone.now())
        record_audit(by, f"revoked API key {key.name} of user {key.user.get_username()}")


def authenticate(raw_key):
    """The active key whose text is `raw_key`, or None (unknown, revoked, or its user is gone
    or disabled)."""
    if not isinstance(raw_key, str) or not raw_key.startswith(KEY_PREFIX) or \
            len(raw_key) > 100:
        return None
    wanted = digest(raw_key)
    key = ApiKey.objects.select_related("user").filter(
        secret_hash=wanted, revoked__isnull=True).first()
    # the index found it; compare_digest keeps the final comparison constant-time all the same
    if key is None or not hmac.compare_digest(key.secret_hash, wanted) or \
            not key.user.is_active:
        return None
    now = timezone.now()
    if key.last_used is None or now - key.last_used > LAST_USED_EVERY:
        ApiKey.objects.filter(pk=key.pk).update(last_used=now)
        key.last_used = now
    return key


def _decoded_v2_header(value):
    """API v2's header holds the base64 of the key; a key sent as is is taken too."""
    value = value.strip()
    if value.startswith(KEY_PREFIX):
        return value
    try:
        return base64.b64decode(value, validate=True).decode().strip()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None


def raw_key_of(request):
    """The key text the request carries, or None: `Authorization: Bearer <key>` or the
    API v2 header (`X_LB_APIKEY` / `X-LB-APIKEY`, base64)."""
    scheme, _, value = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    v2 = request.META.get("HTTP_X_LB_APIKEY", "")
    if v2:
        return _decoded_v2_header(v2)
    return None


def key_for(request):
    """The request's active ApiKey, or None. Remembered on the request (one lookup)."""
    if not hasattr(request, "api_key"):
        request.api_key = authenticate(raw_key_of(request))
    return request.api_key


def user_for(request):
    """The user the request's key belongs to, or None. The user carries the key's name, so
    the audit line of every change made with it says "(API key <name>)" (core.audit)."""
    key = key_for(request)
    if key is None:
        return None
    user = key.user
    user.api_key_name = key.name
    return user


def role_for(request):
    """The role of the request's key (its user's role), or None without a valid key."""
    user = user_for(request)
    return roles.role_of(user) if user is not None else None
