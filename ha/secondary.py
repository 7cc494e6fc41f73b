"""What a Secondary says and refuses: its configuration is the Primary's."""

import ipaddress

from django.conf import settings

from .models import Pair


def primary_url(primary_ip):
    host = f"[{primary_ip}]" if ":" in str(primary_ip) else str(primary_ip)
    return f"https://{host}:{settings.LBADMIN_HTTPS_PORT}/lbadmin/"


def notice(primary_ip):
    return ("This appliance is the Secondary of a clustered pair: change the configuration on "
            f"the Primary ({primary_url(primary_ip)}).")


def primary_of_this_secondary():
    """The Primary's address when this appliance is a Secondary, else None (one query)."""
    row = Pair.objects.filter(pk=1, role=Pair.Role.SECONDARY).values_list("peer_ip",
                                                                          flat=True).first()
    if row is None:
        return None
    try:
        return str(ipaddress.ip_address(row))
    except ValueError:
        return None
