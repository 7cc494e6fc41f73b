"""The login page's guard against password guessing: after MAX_FAILURES refused logins from
one address within WINDOW, that address may not try again until the window has passed."""

import datetime

from django.contrib.auth.forms import AuthenticationForm
from django.contrib.auth.signals import user_login_failed
from django.core.exceptions import ValidationError
from django.dispatch import receiver
from django.utils import timezone

from .models import FailedLogin

MAX_FAILURES = 5
WINDOW = datetime.timedelta(minutes=15)


def client_address(request):
    return request.META.get("REMOTE_ADDR", "") or "0.0.0.0"  # noqa: S104 - a label here


def recent_failures(address):
    return FailedLogin.objects.filter(address=address, at__gte=timezone.now() - WINDOW)


@receiver(user_login_failed)
def remember_failure(sender, credentials, request=None, **kwargs):
    if request is not None:
        FailedLogin.objects.create(address=client_address(request),
                                   username=str(credentials.get("username", ""))[:150])
        FailedLogin.objects.filter(at__lt=timezone.now() - WINDOW).delete()


class ThrottledAuthenticationForm(AuthenticationForm):
    def clean(self):
        failures = recent_failures(client_address(self.request))
        if failures.count() >= MAX_FAILURES:
            first = failures.order_by("at").first().at
            wait = max(1, int((first + WINDOW - timezone.now()).total_seconds() // 60) + 1)
            raise ValidationError(
                f"Too many refused logins from your address: try again in {wait} minutes.",
                code="throttled")
        return super().clean()
