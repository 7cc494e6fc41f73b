"""The HA pair's takeover alert: this node became the active one (keepalived said MASTER after
BACKUP or FAULT). keepalived runs no script and ha.notify imports no Django, so the transition
is noticed from the state file ha.notify writes (<data>/ha/vrrp-state: the word and when),
by the pair's catch-up round every 2 s on the maintenance worker; what was seen last is kept
in Redis, so each transition is one alert, whichever process looks.
"""

import redis

from core import alerts
from core.runtime import redis_client
from network.models import NetworkConfiguration

from . import state

SEEN_KEY = "lbadmin:alerts:vrrp-seen"


def read_state_file():
    """(word, timestamp text) of keepalived's last transition, or None without a file."""
    try:
        words = state.state_file().read_text(encoding="utf-8", errors="replace").split()
    except OSError:
        return None
    if not words:
        return None
    return words[0].lower(), (words[1] if len(words) > 1 else "")


def note_vrrp_state(client=None):
    """Raise the takeover alert when keepalived's state turned master since the last look.
    The first look only remembers (an appliance that starts as the active node took nothing
    over). Returns the alert, or None."""
    seen = read_state_file()
    if seen is None:
        return None
    try:
        client = client or redis_client()
        previous = client.getset(SEEN_KEY, " ".join(seen))
    except (redis.RedisError, OSError):
        return None
    if previous is None:
        return None
    previous_word = previous.decode(errors="replace").split(" ", 1)[0]
    if seen[0] != "master" or previous_word == "master":
        return None
    hostname = NetworkConfiguration.load().hostname
    was = {"backup": "passive", "fault": "down"}.get(previous_word, previous_word)
    return alerts.raise_alert(
        "takeover", f"This appliance ({hostname}) took over: it is now the active node of the "
                    f"HA pair (it was {was}) and holds the VIPs and floating IPs.",
        details={"node": hostname, "previous": previous_word, "state": seen[0],
                 "since": seen[1]}, client=client)
