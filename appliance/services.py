"""Actions of the appliance app: plain functions that views, commands and tests call."""

import secrets

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction

from .models import Preferences


def should_ask_setup_wizard(user):
    return not Preferences.objects.filter(user=user, setup_wizard_dismissed=True).exists()


def do_dismiss_setup_wizard(user):
    Preferences.objects.update_or_create(user=user, defaults={"setup_wizard_dismissed": True})


@transaction.atomic
def ensure_appliance_user(password=""):
    """Create the `loadbalancer` user at first start; return the password if one was made.

    There is no default password: the first start takes the given one (LBADMIN_PASSWORD) or
    generates a strong one. Only its hash is stored, so it can be shown this once. Later starts
    leave the user alone and return None.
    """
    users = get_user_model()
    if users.objects.filter(username=settings.APPLIANCE_USER).exists():
        return None
    password = password or secrets.token_urlsafe(15)
    users.objects.create_user(settings.APPLIANCE_USER, password=password)
    return password
