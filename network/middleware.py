"""The WebUI shows times in the time zone chosen under Local Configuration › System Date &
time (settings are read once per process; this is read per request, so a save holds at once in
every WebUI worker)."""

import zoneinfo

from django.utils import timezone

from .models import DateTimeSettings


def time_zone(get_response):
    def middleware(request):
        chosen = DateTimeSettings.objects.filter(pk=1).values_list("time_zone", flat=True).first()
        try:
            timezone.activate(zoneinfo.ZoneInfo(chosen)) if chosen else timezone.deactivate()
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            timezone.deactivate()  # a zone the system no longer has: LBADMIN_TIME_ZONE's
        try:
            return get_response(request)
        finally:
            timezone.deactivate()

    return middleware
