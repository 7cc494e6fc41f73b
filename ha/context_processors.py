from django.utils.functional import SimpleLazyObject

from .models import Pair
from .secondary import notice, primary_url
from .state import vrrp_state

STATE_WORDS = {"active": "Active", "passive": "Passive", "idle": "Idle", "down": "Down",
               "stepped": "Stepped down (split brain)"}


def ha(request):
    """The header's "Primary | Active" (nothing when standalone; "Secondary | Stepped down
    (split brain)" or "Primary | Active (split brain)", in red, during a split brain) and, on
    a Secondary's Cluster Configuration pages, the notice that the Primary holds the
    configuration. Lazy, one query and one small file read when a page shows them; never a
    network call."""
    if not request.user.is_authenticated:
        return {}
    row = SimpleLazyObject(
        lambda: Pair.objects.filter(pk=1).values(
            "role", "peer_ip", "stepped_down", "split_brain_since").first()
        or {"role": Pair.Role.STANDALONE, "peer_ip": None, "stepped_down": False,
            "split_brain_since": None})

    def header():
        if row["role"] == Pair.Role.STANDALONE:
            return ""
        role = Pair.Role(row["role"]).label
        if row["stepped_down"]:
            return f"{role} | {STATE_WORDS['stepped']}"
        words = STATE_WORDS[vrrp_state(stepped_down=False)]
        return f"{role} | {words} (split brain)" if row["split_brain_since"] else \
            f"{role} | {words}"

    def split_brain():
        return row["role"] != Pair.Role.STANDALONE and \
            bool(row["stepped_down"] or row["split_brain_since"])

    def secondary_notice():
        match = getattr(request, "resolver_match", None)
        if row["role"] != Pair.Role.SECONDARY or match is None or \
                match.namespace != "cluster" or not row["peer_ip"]:
            return None
        return {"text": notice(row["peer_ip"]), "url": primary_url(row["peer_ip"])}

    return {"ha_header": SimpleLazyObject(header),
            "ha_split_brain": SimpleLazyObject(split_brain),
            "ha_secondary_notice": SimpleLazyObject(secondary_notice)}
