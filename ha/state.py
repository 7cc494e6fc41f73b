"""This node's VRRP state as keepalived's notify script last wrote it: <data>/ha/vrrp-state
holds one word (master, backup or fault) and a timestamp. Read from a file so every page can
show it without asking anyone.

A pair with no virtual service and no floating IP yet has no VRRP instance (ha.render:
keepalived refuses one without an address), so keepalived never says a state: that node is
"idle" (paired, nothing to hold), not "down". A state file left from an instance that a later
render removed (the last address deleted) is not believed either.

A Secondary whose split-brain guard stopped its keepalived (ha.split_brain, Pair.stepped_down)
is "stepped": the state file still says what keepalived said before its SIGTERM (keepalived
says nothing then), and the Primary learns it from this word in the pair's status calls."""

from django.conf import settings

from core.runtime import HA_DIR_NAME, KEEPALIVED_CONF_NAME, VRRP_STATE_NAME

WORDS = {"master": "active", "backup": "passive", "fault": "down"}
STATES = ("active", "passive", "idle", "down", "stepped")
INSTANCE = "vrrp_instance"


def state_file():
    return settings.DATA_DIR / HA_DIR_NAME / VRRP_STATE_NAME


def _has_instance():
    """Whether the rendered keepalived.conf holds a VRRP instance (None: no file)."""
    try:
        text = (settings.DATA_DIR / HA_DIR_NAME / KEEPALIVED_CONF_NAME).read_text(
            encoding="utf-8", errors="replace")
    except OSError:
        return None
    return any(line.lstrip().startswith(INSTANCE) for line in text.splitlines())


def _stepped_down():
    from .models import Pair  # ha.models imports nothing of this module; loaded when asked

    return Pair.objects.filter(pk=1, stepped_down=True).exists()


def vrrp_state(stepped_down=None):
    """"active", "passive", "idle" (keepalived has nothing to hold), "down" (fault, or
    keepalived has an instance and never said) or "stepped" (split brain: the Secondary
    stopped its keepalived). `stepped_down`: Pair.stepped_down when the caller has it (else
    one query)."""
    if _has_instance() is False:
        return "idle"
    if stepped_down is None:
        stepped_down = _stepped_down()
    if stepped_down:
        return "stepped"
    try:
        words = state_file().read_text(encoding="utf-8", errors="replace").split()
    except OSError:
        return "down"
    return WORDS.get(words[0].lower(), "down") if words else "down"


def known(state):
    """A state word another node sent, if it is one (else "")."""
    state = str(state or "")[:10]
    return state if state in STATES else ""
