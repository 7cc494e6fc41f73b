"""Maintenance › Passwords' users: add, change the role of, reset the password of, remove a
WebUI user. The rules (the roles themselves are core.roles'):

- `loadbalancer`, the appliance's own user, is always `config`: it cannot be removed or given
  another role (the HA pairing and the guide's steps log in with it);
- there is always at least one `config` user;
- nobody removes themself (the session would end with nobody having decided so).

Each action is one transaction, leaves a line in Logs › User Log, and once committed sends
core.signals.users_changed (a Primary replicates the users to its Secondary at once).
"""

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction

from core import signals
from core.audit import record_audit, user_name
from core.models import UserRole
from core.roles import CONFIG, role_of


class UserRefused(Exception):
    """The action would break one of the rules above; the message says which, in words."""


def is_appliance_user(user):
    return user.get_username() == settings.APPLIANCE_USER


def users_with_roles():
    """Every WebUI user with its role, for the list; `loadbalancer` first."""
    roles = dict(UserRole.objects.values_list("user_id", "role"))
    users = get_user_model().objects.order_by("username")
    listed = [(user, CONFIG if is_appliance_user(user) else roles.get(user.pk, "report"))
              for user in users]
    return sorted(listed, key=lambda pair: not is_appliance_user(pair[0]))


def config_users():
    """The users whose role is `config` (`loadbalancer` is, whatever is stored)."""
    configured = set(UserRole.objects.filter(role=CONFIG).values_list("user_id", flat=True))
    return [user for user in get_user_model().objects.filter(is_active=True)
            if is_appliance_user(user) or user.pk in configured]


def _changed(actor, action):
    record_audit(actor, action)
    transaction.on_commit(lambda: signals.users_changed.send(sender=None, user=user_name(actor)),
                          robust=True)


def _store_role(user, role):
    stored = UserRole(user=user, role=role)
    stored.full_clean(validate_unique=False)
    stored.save()


@transaction.atomic
def do_add_user(actor, username, password, role):
    """A new user: `username`, `password` and `role` as a form cleaned them."""
    user = get_user_model()(username=username)
    user.set_password(password)
    user.full_clean()
    user.save()
    _store_role(user, role)
    _changed(actor, f"added the WebUI user {username} with the role {role}")
    return user


@transaction.atomic
def do_set_role(actor, user, role):
    before = role_of(user)
    if role == before:
        return
    if is_appliance_user(user):
        raise UserRefused(f"The {settings.APPLIANCE_USER} user always has the config role.")
    if before == CONFIG and [u.pk for u in config_users()] == [user.pk]:
        raise UserRefused(f"{user.get_username()} is the only user with the config role; "
                          "give another user the config role first.")
    _store_role(user, role)
    _changed(actor, f"changed the role of the WebUI user {user.get_username()} from {before} "
                    f"to {role}")


@transaction.atomic
def do_reset_password(actor, user, password):
    user.set_password(password)
    user.save(update_fields=["password"])
    _changed(actor, f"reset the password of the WebUI user {user.get_username()}")


@transaction.atomic
def do_remove_user(actor, user):
    if is_appliance_user(user):
        raise UserRefused(f"The {settings.APPLIANCE_USER} user cannot be removed.")
    if user.pk == getattr(actor, "pk", None):
        raise UserRefused("You cannot remove yourself; another user with the config role can.")
    if role_of(user) == CONFIG and [u.pk for u in config_users()] == [user.pk]:
        raise UserRefused(f"{user.get_username()} is the only user with the config role and "
                          "cannot be removed.")
    name, role = user.get_username(), role_of(user)
    user.delete()
    _changed(actor, f"removed the WebUI user {name} (role {role})")
