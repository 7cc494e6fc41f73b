"""The HA pair's work in the maintenance worker: pairing, breaking, replication. A web request
never calls the other node; these tasks do (core.queues routes ha.tasks.* to maintenance).
The split-brain guard alone runs on the checks worker: it probes with ARP (CAP_NET_RAW) in the
appliance's namespace."""

from celery import shared_task

from . import alerts, pairing, replication, split_brain


@shared_task(ignore_result=True)
def pair(local_ip, peer_ip, sealed_password, user):
    """"Add new node": the password arrives sealed (pairing.seal) and is dropped after use."""
    try:
        password = pairing.unseal(sealed_password)
    except pairing.PairingRefused as refused:
        pairing.fail_pairing(str(refused), refused.field)
        return
    pairing.do_pair(local_ip, peer_ip, password, user)


@shared_task(ignore_result=True)
def break_pair(user):
    """"Break Clustered Pair" on this node; or, sent by ha.views.peer_break once the other
    node broke it, only the end of it: the addresses placed here once keepalived stopped."""
    pairing.do_break_pair(user)


@shared_task(ignore_result=True)
def replicate_now():
    """Sent on every committed change on the Primary: the Secondary has it within a second."""
    replication.replicate()


@shared_task(ignore_result=True)
def catch_up():
    """Beat, every 2 s: re-send what the Secondary has not acknowledged; hand over the
    Secondary's local actions."""
    alerts.note_vrrp_state()  # first: this node took over (the takeover alert)
    replication.catch_up()


@shared_task(ignore_result=True)
def guard_split_brain():
    """Beat, every second, on the checks worker: ha.split_brain's rule, one round."""
    split_brain.guard()
