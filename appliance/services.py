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


def record_audit(user, action):
    """One line in Logs > User Log. Called inside the action's transaction."""
    from .models import AuditEntry

    AuditEntry.objects.create(user=getattr(user, "username", str(user)), action=action[:300])


def record_change(user, action):
    """A change of the configuration: the audit line, and a revision once it commits."""
    from maintenance.revisions import record_revision_on_commit

    record_audit(user, action)
    record_revision_on_commit(user, action)


WORKER_TIMEOUT = 10  # seconds the dataplane worker has to answer the WebUI


class WorkerUnavailable(Exception):
    """Redis or the dataplane worker did not answer; the message says which, in words."""


def send_task(task, *args, **kwargs):
    """Send `task` and return its AsyncResult. Redis is pinged first, so a dead broker is told
    at once (WorkerUnavailable) instead of after the client's reconnect attempts."""
    import kombu.exceptions
    import redis

    from .runtime import redis_client

    try:
        redis_client(timeout=1.0).ping()
        return task.apply_async(args, kwargs)
    except (redis.RedisError, OSError, kombu.exceptions.OperationalError) as problem:
        raise WorkerUnavailable(f"Redis is down ({problem}).") from problem


def ask_supervisor(request):
    """Queue a request (restart a service, switch to a release) for the supervisor, the
    process outside the services that starts and stops them (appliance/supervisor.py)."""
    import json

    import redis

    from .runtime import redis_client, supervisor_state
    from .supervisor import REQUESTS_KEY

    if supervisor_state() is None:
        raise WorkerUnavailable("no supervisor is running (it is the process that started "
                                "the services: `make demo`), or Redis is down.")
    try:
        redis_client().rpush(REQUESTS_KEY, json.dumps(request))
    except (redis.RedisError, OSError) as problem:
        raise WorkerUnavailable(f"Redis is down ({problem}).") from problem


def ask_dataplane(task, **kwargs):
    """Run `task` on the dataplane worker and wait for its answer."""
    import celery.exceptions
    import kombu.exceptions
    import redis

    result = send_task(task, **kwargs)
    try:
        return result.get(timeout=WORKER_TIMEOUT)
    except (celery.exceptions.TimeoutError, kombu.exceptions.OperationalError,
            redis.RedisError, OSError, RuntimeError) as problem:
        raise WorkerUnavailable(
            f"The dataplane worker did not answer within {WORKER_TIMEOUT} s "
            f"({type(problem).__name__}).") from problem


class NetworkRefused(Exception):
    """The kernel refused a network change; the previous settings stay (in it and here)."""


def do_configure_network(changes, user, browser_address=""):
    """Apply a Local Configuration change through the dataplane worker, and save it only once
    the kernel took it. `changes` replaces keys of the stored configuration.

    If the change removes `browser_address` (the address the browser is using), it is kept
    only if confirmed from the new address in time: returns the PendingNetworkChange then."""
    import datetime

    from django.conf import settings
    from django.utils import timezone

    from .models import NetworkConfiguration, PendingNetworkChange
    from .tasks import apply_network, roll_back_unconfirmed

    stored = NetworkConfiguration.load()
    previous = stored.as_dict()
    config = previous | changes
    result = ask_dataplane(apply_network, config=config)
    if not result["ok"]:
        raise NetworkRefused(result["error"])
    pending = None
    with transaction.atomic():
        for key, value in changes.items():
            setattr(stored, key, value)
        stored.save()
        record_change(user, f"configured the network: {', '.join(sorted(changes))}")
        if browser_address and _removes(previous, config, browser_address):
            pending = PendingNetworkChange.objects.create(
                token=secrets.token_urlsafe(24), previous=previous,
                deadline=timezone.now() + datetime.timedelta(
                    seconds=settings.NETWORK_CONFIRM_SECONDS))
            token = pending.token
            transaction.on_commit(lambda: roll_back_unconfirmed.apply_async(
                (token,), countdown=settings.NETWORK_CONFIRM_SECONDS))
    _reapply_dataplane()
    return pending


def _addresses(config):
    return {cidr.split("/")[0] for settings in config["interfaces"].values()
            for cidr in settings.get("addresses", [])}


def _removes(previous, config, address):
    return address in _addresses(previous) and address not in _addresses(config)


def _reapply_dataplane():
    """VIPs and floating IPs may now have a subnet to live in."""
    from clusters.tasks import apply_dataplane

    apply_dataplane.apply_async(kwargs={"full": True})


def do_confirm_network_change(token, user):
    from .models import PendingNetworkChange

    with transaction.atomic():
        pending = PendingNetworkChange.objects.select_for_update().filter(token=token).first()
        if pending is None or pending.rolled_back:
            return False
        pending.confirmed = True
        pending.save()
        record_audit(user, "confirmed the network change from the new address")
    return True


def do_roll_back_unconfirmed(token):
    """Runs on the dataplane worker when the confirmation time is up."""
    from .models import NetworkConfiguration, PendingNetworkChange
    from .network import apply_network

    with transaction.atomic():
        pending = PendingNetworkChange.objects.select_for_update().filter(token=token).first()
        if pending is None or pending.confirmed or pending.rolled_back:
            return "kept"
        apply_network(pending.previous)
        stored = NetworkConfiguration.load()
        for key, value in pending.previous.items():
            setattr(stored, key, value)
        stored.save()
        pending.rolled_back = True
        pending.save()
        record_change("lbadmin", "rolled back a network change nobody confirmed in time")
    _reapply_dataplane()
    return "rolled back"
