"""Local Configuration › System Date & time: the time zone the WebUI shows times in, and up
to three NTP servers, which chronyd (a service of the Stack, in the appliance's namespace)
follows; the page reads chronyd's sources and whether it is synchronised live, through
chronyc.

The time zone is the WebUI's (network.middleware.time_zone activates it for every request):
the page's current time, the audit log, every time a page shows. It does not change the
host's /etc/localtime, nor the log files, which keep the time zone the services started with
(LBADMIN_TIME_ZONE, UTC unless set): chronyd and the kernel keep UTC anyway.
"""

import dataclasses
import ipaddress
import logging
import re
import zoneinfo

from django import forms
from django.conf import settings
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db import transaction
from django.shortcuts import redirect, render
from django.utils import timezone

from core.audit import record_change
from core.workers import WorkerUnavailable, ask_supervisor

from . import chrony
from .models import DateTimeSettings

log = logging.getLogger("lbadmin.network")

NTP_FIELDS = ("ntp1", "ntp2", "ntp3")
# Names in the zoneinfo list that are no time zone to choose: "localtime" is the host's own
# /etc/localtime, "Factory" a placeholder, "posixrules" a rule file.
NOT_ZONES = {"localtime", "Factory", "posixrules"}
# RFC 1123 host names: dot-separated labels of letters, digits and hyphens (not first or last)
LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
HOST_NAME = re.compile(rf"^(?=.{{1,253}}$){LABEL}(?:\.{LABEL})*$")


def time_zones():
    """Every time zone the system's zoneinfo holds, sorted."""
    return sorted(zoneinfo.available_timezones() - NOT_ZONES)


def clean_ntp_server(text):
    """A host name or an IP address chronyd can poll; ValidationError says why not."""
    text = (text or "").strip()
    if any(c.isspace() for c in text):
        raise ValidationError(f"“{text}” has a space in it: give one host name or address.")
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        address = None
    if address is not None:
        for flaw, words in (("is_unspecified", "the unspecified address"),
                            ("is_loopback", "a loopback address: the appliance itself"),
                            ("is_multicast", "a multicast address"),
                            ("is_link_local", "a link-local address (it needs an interface)")):
            if getattr(address, flaw):
                raise ValidationError(f"{text} is {words}, not an NTP server.")
        return str(address)
    if not HOST_NAME.match(text) or text.rsplit(".", 1)[-1].isdigit():
        if re.fullmatch(r"[0-9.]+", text):
            raise ValidationError(f"“{text}” is not a valid IPv4 address.")
        raise ValidationError(f"“{text}” is not a host name or an IP address: a name is "
                              "letters, digits and hyphens in parts joined by dots, e.g. "
                              "ntp.example.org.")
    return text.lower()


class DateTimeForm(forms.Form):
    time_zone = forms.ChoiceField(label="Select Timezone")
    ntp1 = forms.CharField(label="NTP Server 1", required=False, max_length=253)
    ntp2 = forms.CharField(label="NTP Server 2", required=False, max_length=253)
    ntp3 = forms.CharField(label="NTP Server 3", required=False, max_length=253,
                           help_text="A host name or an IP address in each; leave them empty "
                                     "to stop chronyd.")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["time_zone"].choices = [(zone, zone) for zone in time_zones()]
        self.fields["time_zone"].error_messages["invalid_choice"] = (
            "“%(value)s” is not a time zone this system knows.")

    def clean(self):
        cleaned = super().clean()
        seen = {}
        for name in NTP_FIELDS:
            if not cleaned.get(name):
                continue
            try:
                server = cleaned[name] = clean_ntp_server(cleaned[name])
            except ValidationError as error:
                self.add_error(name, error)
                continue
            if server in seen:
                self.add_error(name, f"{server} is {self[seen[server]].label} already.")
            seen.setdefault(server, name)
        return cleaned

    def ntp_servers(self):
        return [self.cleaned_data[name] for name in NTP_FIELDS if self.cleaned_data.get(name)]


@dataclasses.dataclass
class Saved:
    chronyd: str  # what was asked of it: "restart", "stop", or "" (its file did not change)
    refused: str = ""  # why the supervisor could not be asked, in words


def do_save_date_time(time_zone, ntp_servers, user):
    """Store the time zone and NTP servers and write chrony.conf (none: remove it), all or
    nothing; then, if the file changed, ask the supervisor to restart chronyd with it (or
    stop it) — a time zone alone leaves chronyd synchronised. The settings are saved even
    when the supervisor cannot be asked (Saved.refused says why). ValueError or OSError when
    chrony.conf cannot be written (nothing saved)."""
    servers = [clean_ntp_server(server) for server in ntp_servers]  # every writer's rules
    if time_zone not in time_zones():
        raise ValueError(f"{time_zone!r} is not a time zone this system knows.")
    text = chrony.render(servers, chrony.runtime_dir()) if servers else None
    request = "" if text == chrony.read_config() else "restart" if servers else "stop"
    with transaction.atomic():
        stored = DateTimeSettings.load()
        stored.time_zone, stored.ntp_servers = time_zone, servers
        stored.save()
        record_change(user, f"set the time zone {time_zone} and NTP servers "
                            f"{', '.join(servers) or 'none'}")
        if text is None:
            chrony.remove_config()
        else:
            chrony.write_config(text)  # an OSError here rolls the save back
    if not request:
        return Saved("")
    try:
        ask_supervisor({request: "chronyd", "by": getattr(user, "username", str(user))})
    except WorkerUnavailable as problem:
        return Saved(request, str(problem))
    return Saved(request)


def shown_time_zone():
    return DateTimeSettings.load().time_zone or settings.TIME_ZONE


def date_time(request):
    stored = DateTimeSettings.load()
    servers = (stored.ntp_servers + ["", "", ""])[:3]
    form = DateTimeForm(request.POST or None, initial={
        "time_zone": shown_time_zone(), **dict(zip(NTP_FIELDS, servers, strict=True))})
    if request.method == "POST" and form.is_valid():
        try:
            saved = do_save_date_time(form.cleaned_data["time_zone"], form.ntp_servers(),
                                      request.user)
        except (ValueError, OSError) as problem:
            log.error("System Date & time not saved: %s", problem)
            form.add_error(None, f"Nothing was saved: chrony.conf could not be written "
                                 f"({problem}).")
        else:
            if saved.refused:
                done = {"restart": "restarted", "stop": "stopped"}[saved.chronyd]
                messages.error(request, f"Saved, but chronyd was not {done}: {saved.refused}")
            else:
                messages.success(request, {
                    "restart": "Saved: chronyd restarts with the NTP servers.",
                    "stop": "Saved: no NTP server, chronyd is stopped.",
                    "": "Saved (the NTP servers are unchanged: chronyd keeps running)."}[
                        saved.chronyd])
            return redirect("local:date-time")
    context = {"page_title": "System Date & time", "form": form, **live_context(stored)}
    if request.htmx and request.method == "GET":
        return render(request, "network/date_time_status.html", context)
    return render(request, "network/date_time.html", context)


def live_context(stored):
    """The current time in the shown time zone and chronyd's own view, read now."""
    status = chrony.read_status() if stored.ntp_servers else None
    return {"now": timezone.localtime(), "status": status, "configured": stored.ntp_servers,
            "config_path": chrony.config_path()}
