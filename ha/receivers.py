"""What the HA pair does when the configuration changes (connected in HaConfig.ready)."""

import contextlib

from core.workers import BROKER_ERRORS

from .models import Pair
from .replication import stamp_generation
from .tasks import replicate_now


def on_configuration_changed(user=None, action="", **kwargs):
    """Receiver of core.signals.configuration_changed (sent on commit): stamp the generation
    with its time; on a Primary, send the change to the Secondary now. The broker may be down:
    the catch-up task (every 2 s) re-sends until the Secondary acknowledges."""
    stamp_generation()
    if Pair.objects.filter(pk=1, role=Pair.Role.PRIMARY).exists():
        with contextlib.suppress(*BROKER_ERRORS):  # the catch-up (beat, 2 s) sends it later
            replicate_now.apply_async()


def on_users_changed(**kwargs):
    """Receiver of core.signals.users_changed (sent on commit): on a Primary, send the WebUI
    users (roles and passwords with them) to the Secondary now, so a removed user or a lowered
    role holds there too. With the broker down they go with the next replication."""
    if Pair.objects.filter(pk=1, role=Pair.Role.PRIMARY).exists():
        with contextlib.suppress(*BROKER_ERRORS):
            replicate_now.apply_async()
