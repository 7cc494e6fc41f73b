import time

from django import template

register = template.Library()


@register.filter
def seconds_ago(epoch):
    """1764140000.5 -> '12 s ago' (System Overview's last-check times)."""
    seconds = max(0, int(time.time() - float(epoch)))
    if seconds < 120:
        return f"{seconds} s ago"
    return f"{seconds // 60} min ago"


@register.filter
def get_item(mapping, key):
    return mapping.get(key, "")
