"""The guard against password guessing, and the User Log's lines for logins and logouts.

After MAX_FAILURES refused passwords from one address within WINDOW, that address may not try
again until the window has passed: on the login page, and on Maintenance › Passwords, whose
current-password check is also limited per user (appliance.middleware.password_check_throttle).

The guard holds under parallel requests: an attempt is recorded (as a FailedLogin row) before
its password is evaluated, in the same transaction as the count that lets it through — SQLite's
BEGIN IMMEDIATE (settings: transaction_mode) serializes those transactions — and the row is
deleted again only if the password was right. So no more than MAX_FAILURES passwords are ever
evaluated per address (and user) in a window, however many requests arrive at once.

Logins, logouts and refused logins, with the client's address, go to Logs › User Log.
"""

import datetime

from django.contrib.auth.forms import AuthenticationForm
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.core.exceptions import ValidationError
from django.db import transaction
from django.dispatch import receiver
from django.utils import timezone

from core.audit import record_audit

from .models import FailedLogin

MAX_FAILURES = 5
WINDOW = datetime.timedelta(minutes=15)
# The request attribute naming the attempt already recorded for it (a FailedLogin's pk).
ATTEMPT = "_lbadmin_password_attempt"
# Set on the request when a password was refused (user_login_failed) during the attempt.
REFUSED = "_lbadmin_password_refused"


def client_address(request):
    return request.META.get("REMOTE_ADDR", "") or "0.0.0.0"  # noqa: S104 - a label here


def recent_failures(address=None, username=None):
    failures = FailedLogin.objects.filter(at__gte=timezone.now() - WINDOW)
    if address is not None:
        failures = failures.filter(address=address)
    if username is not None:
        failures = failures.filter(username=username)
    return failures


def _minutes_left(failures):
    first = failures.order_by("at").first().at
    return max(1, int((first + WINDOW - timezone.now()).total_seconds() // 60) + 1)


def begin_attempt(request, username, per_user=False, what="refused logins"):
    """Let one password be evaluated, or say why not. Returns None and records the attempt (as
    a failure until end_attempt says it was right), or the refusal in words.

    The count and the record are one transaction, so parallel requests cannot all pass a count
    taken before any of them was recorded."""
    address = client_address(request)
    username = str(username or "")[:150]
    with transaction.atomic():
        scopes = [("your address", recent_failures(address=address))]
        if per_user:
            scopes.append(("this user", recent_failures(username=username)))
        for who, failures in scopes:
            # select_for_update: the rows stay locked on databases that lock rows; SQLite's
            # immediate transaction already holds the write lock.
            if len(failures.select_for_update()) >= MAX_FAILURES:
                return (f"Too many {what} from {who}: try again in "
                        f"{_minutes_left(failures)} minutes.")
        attempt = FailedLogin.objects.create(address=address, username=username)
    setattr(request, ATTEMPT, attempt.pk)
    return None


def end_attempt(request, succeeded=None):
    """The password of the attempt begin_attempt recorded was right (its row goes) or wrong
    (its row stays, counted for WINDOW); by default, wrong if user_login_failed said so."""
    pk = getattr(request, ATTEMPT, None)
    if pk is None:
        return
    delattr(request, ATTEMPT)
    if succeeded is None:
        succeeded = not getattr(request, REFUSED, False)
    if succeeded:
        FailedLogin.objects.filter(pk=pk).delete()
    FailedLogin.objects.filter(at__lt=timezone.now() - WINDOW).delete()


@receiver(user_login_failed, dispatch_uid="lbadmin-login-failed")
def remember_failure(sender, credentials, request=None, **kwargs):
    """A refused password (the login page, any authenticate(), or a wrong current password on
    a page that asks for it: credentials["page"] names it): counted, and in the User Log with
    the client's address. An attempt begin_attempt recorded is counted already."""
    if request is None:
        return
    username = str(credentials.get("username", ""))[:150]
    address = client_address(request)
    setattr(request, REFUSED, True)
    if getattr(request, ATTEMPT, None) is None:
        FailedLogin.objects.create(address=address, username=username)
        FailedLogin.objects.filter(at__lt=timezone.now() - WINDOW).delete()
    page = credentials.get("page")
    record_audit(username or "-", f"wrong current password on {page} from {address}" if page
                 else f"failed login from {address}")


def _browser_request(request):
    """A login or logout a browser made (not Django's test client's force_login or a
    command's, which have no client address)."""
    return request is not None and bool(request.META.get("REMOTE_ADDR"))


@receiver(user_logged_in, dispatch_uid="lbadmin-logged-in")
def audit_login(sender, request, user, **kwargs):
    if _browser_request(request):
        record_audit(user, f"logged in from {client_address(request)}")


@receiver(user_logged_out, dispatch_uid="lbadmin-logged-out")
def audit_logout(sender, request, user, **kwargs):
    if user is not None and _browser_request(request):
        record_audit(user, f"logged out from {client_address(request)}")


class ThrottledAuthenticationForm(AuthenticationForm):
    def clean(self):
        username = self.cleaned_data.get("username")
        if not username or not self.cleaned_data.get("password"):
            return super().clean()  # nothing to evaluate: the fields say what is missing
        refused = begin_attempt(self.request, username)
        if refused:
            record_audit(str(username)[:150],
                         f"login refused (too many wrong passwords) from "
                         f"{client_address(self.request)}")
            raise ValidationError(refused, code="throttled")
        try:
            cleaned = super().clean()
        except ValidationError:
            end_attempt(self.request, succeeded=False)
            raise
        end_attempt(self.request, succeeded=True)
        return cleaned
