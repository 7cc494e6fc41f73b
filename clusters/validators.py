"""Validators for Layer 4 services, in one place for forms, restore and the API.

Each raises ValidationError with a message in words that can stand next to its field.
"""

import functools
import ipaddress
import re

from django.core.exceptions import ValidationError

MAX_PORT_ITEMS = 64


def parse_ports(text):
    """'12000,12100,800-900' -> [(12000, 12000), (12100, 12100), (800, 900)], in given order.

    Refuses an empty list, anything but whole numbers and ranges, ports outside 1-65535, a
    range written backwards, and a port given twice (also inside a range).
    """
    items = [item.strip() for item in (text or "").split(",")]
    if not any(items):
        raise ValidationError("Enter at least one port, e.g. 80 or 12000,12100 or 800-900.")
    if len(items) > MAX_PORT_ITEMS:
        raise ValidationError(f"At most {MAX_PORT_ITEMS} ports or ranges.")
    ranges = []
    for item in items:
        if not item:
            raise ValidationError("There is an empty entry between two commas.")
        low_text, dash, high_text = item.partition("-")
        try:
            low = int(low_text.strip())
            high = int(high_text.strip()) if dash else low
        except ValueError:
            raise ValidationError(
                f"“{item}” is not a port or a range of ports (such as 800-900).") from None
        for port in (low, high):
            if not 1 <= port <= 65535:
                raise ValidationError(f"Port {port} is outside 1–65535.")
        if high < low:
            raise ValidationError(f"The range {item} runs backwards; write {high}-{low}.")
        for other_low, other_high in ranges:
            if low <= other_high and other_low <= high:
                raise ValidationError(f"“{item}” repeats a port already in the list.")
        ranges.append((low, high))
    return ranges


@functools.lru_cache(maxsize=65536)
def parse_ports_cached(text):
    """parse_ports for text already validated and saved, as a tuple (the data plane reads
    every service's ports on every apply)."""
    return tuple(parse_ports(text))


def format_ports(ranges):
    return ",".join(str(low) if low == high else f"{low}-{high}" for low, high in ranges)


def ranges_overlap(first, second):
    return any(a_low <= b_high and b_low <= a_high
               for a_low, a_high in first for b_low, b_high in second)


def validate_ipv4_host(value):
    """A unicast IPv4 host address (the nftables table is `ip`, so IPv4 only for now)."""
    try:
        address = ipaddress.IPv4Address(str(value).strip())
    except ValueError:
        raise ValidationError(f"“{value}” is not an IPv4 address such as 192.0.2.10.") from None
    if address.is_multicast or address.is_unspecified or address.is_loopback or \
            str(address) == "255.255.255.255":
        raise ValidationError(f"{address} cannot be used: it is not a unicast host address.")
    return str(address)


HOST_NAME = re.compile(r"(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)"
                       r"(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?")


def validate_host(value):
    """A host to send to (the alerts' Smart Host, a trap receiver): a DNS name such as
    mail.example.org or an IP address; returned as written, without spaces around it."""
    value = str(value).strip()
    try:
        address = ipaddress.ip_address(value.strip("[]"))
    except ValueError:
        if not HOST_NAME.fullmatch(value) or value.replace(".", "").isdigit():
            raise ValidationError(f"“{value}” is neither a host name such as mail.example.org "
                                  "nor an IP address.") from None
        return value
    if address.is_multicast or address.is_unspecified:
        raise ValidationError(f"{address} cannot be used: it is not a host's address.")
    return str(address)
