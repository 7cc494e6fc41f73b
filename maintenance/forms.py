import ipaddress
import re
import urllib.parse

from django import forms
from django.core.exceptions import ValidationError
from django.core.validators import URLValidator

from . import certificate, fetch, online, webui
from .models import OnlineUpdate, SecuritySettings, WebUISettings


class OnlineUpdateForm(forms.ModelForm):
    """Physical – Advanced Configuration › Online Update."""

    class Meta:
        model = OnlineUpdate
        fields = ["enabled", "server_url"]
        help_texts = {
            "enabled": "Once a day, ask the update server whether a newer release exists; "
                       "every page then says so.",
            "server_url": "Any plain HTTP(S) server holding latest.json and the files of "
                          "`make release`, e.g. https://updates.example.org/lbadmin/",
        }

    def clean_server_url(self):
        """An http(s) URL; a host written as an address must be one the check may ask (not
        link-local, multicast, unspecified, this appliance's own, nor loopback unless
        LBADMIN_UPDATE_ALLOW_LOOPBACK): a name is resolved and checked at each check."""
        url = self.cleaned_data["server_url"].strip()
        if url:  # none: the check is on but has nobody to ask (the pages say so)
            URLValidator(schemes=["http", "https"],
                         message="Enter an http:// or https:// address.")(url)
            host = urllib.parse.urlsplit(url).hostname or ""
            for address in fetch.literal_addresses(host) or ():
                reason = fetch.refusal(address)
                if reason:
                    raise ValidationError(f"Refused: {reason}; the update server must be "
                                          "another host.")
        return url

    def save(self, commit=True):
        """Switching the check off, or clearing or changing the server, withdraws what the
        last check found: the banner and the Update button go with it."""
        if not online.asks(self.instance) or "server_url" in self.changed_data:
            online.withdraw(self.instance)
        return super().save(commit)


HOST_LABEL = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)")


def host_name_problem(name):
    """Why `name` is not a host name, an IP address or a ".domain" (the domain and every name
    under it), or None."""
    address = name[1:-1] if name.startswith("[") and name.endswith("]") else name
    try:
        ipaddress.ip_address(address)
        return None
    except ValueError:
        pass
    domain = name[1:] if name.startswith(".") else name
    labels = domain.rstrip(".").split(".")
    if len(domain) > 253 or not all(HOST_LABEL.fullmatch(label) for label in labels):
        return f"\u201c{name}\u201d is not a host name or IP address."
    return None


def normal_host_name(name):
    """An address as Django compares it (IPv6 without brackets), a name in lower case."""
    address = name[1:-1] if name.startswith("[") and name.endswith("]") else name
    try:
        return str(ipaddress.ip_address(address))
    except ValueError:
        return name.lower().rstrip(".")


class WebUISettingsForm(forms.ModelForm):
    """Physical – Advanced Configuration › WebUI: the host names it answers to besides its own
    addresses and hostname. `request` is the one saving: the name its browser uses must stay
    allowed, or the next page would be refused."""

    class Meta:
        model = WebUISettings
        fields = ["allowed_hosts"]
        help_texts = {
            "allowed_hosts": "Host names or IP addresses, separated by commas or spaces, the "
                             "WebUI answers to besides its own addresses and hostname "
                             "(\u201c.example.org\u201d: that domain and every name under it). "
                             "\u201c*\u201d alone: any name \u2014 a warning: that lets any "
                             "Host header through, e.g. to DNS-rebinding pages.",
        }

    def __init__(self, *args, request=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.request = request

    def clean_allowed_hosts(self):
        names = WebUISettings.split(self.cleaned_data["allowed_hosts"])
        if "*" in names and len(names) > 1:
            raise ValidationError("\u201c*\u201d allows any name: write it alone.")
        problems = [problem for name in names if name != "*"
                    if (problem := host_name_problem(name))]
        if problems:
            raise ValidationError(problems)
        names = list(dict.fromkeys(normal_host_name(name) for name in names))
        if self.request is not None:
            current = webui.request_domain(self.request)
            if current and not webui.allows(current, [*webui.own_host_names(self.request),
                                                      *names]):
                raise ValidationError(
                    f"Not saved: this browser uses the name \u201c{current}\u201d, which the "
                    "list leaves out \u2014 the WebUI would refuse your next page. Keep "
                    f"\u201c{current}\u201d in the list, or open the WebUI by the appliance's "
                    "address or hostname first.")
        text = ", ".join(names)
        if len(text) > WebUISettings._meta.get_field("allowed_hosts").max_length:
            raise ValidationError("Too many names.")
        return text


class BackupForm(forms.Form):
    passphrase = forms.CharField(required=False, widget=forms.PasswordInput,
                                 help_text="Optional: encrypts the file (scrypt + Fernet).")


class RestoreForm(forms.Form):
    backup = forms.FileField(label="Backup file")
    passphrase = forms.CharField(required=False, widget=forms.PasswordInput,
                                 help_text="Only for an encrypted backup.")


class OfflineUpdateForm(forms.Form):
    archive = forms.FileField(label="Archive")
    checksum = forms.FileField(label="Checksum")
    signature = forms.FileField(label="Signature")


class SecuritySettingsForm(forms.ModelForm):
    """Local Configuration › Security › WebUI Access."""

    class Meta:
        model = SecuritySettings
        fields = ["http_redirect", "hsts", "hsts_max_age", "session_timeout"]


class CertificateUploadForm(forms.Form):
    """Local Configuration › Security › WebUI Certificate: the administrator's own pair,
    checked by maintenance.certificate (the refusal goes next to the file it is about)."""

    certificate = forms.FileField(
        label="Certificate (PEM, with its chain)", required=False,
        help_text="The WebUI's own certificate first, then the certificate that issued it, "
                  "and so on towards the root.")
    key = forms.FileField(
        label="Private Key (PEM)", required=False,
        help_text="Without a passphrase. Leave it empty when the certificate file holds the "
                  "key too.")

    def clean(self):
        files = {}
        for name in ("certificate", "key"):
            upload = self.cleaned_data.get(name)
            if upload is not None and upload.size > certificate.MAX_PEM_BYTES:
                self.add_error(name, f"Larger than {certificate.MAX_PEM_BYTES // 1024} KiB: "
                                     "not a PEM certificate or key.")
                return self.cleaned_data
            files[name] = upload.read() if upload is not None else b""
        try:
            self.checked = certificate.check(files["certificate"], files["key"])
        except certificate.CertificateRefused as refused:
            self.add_error(refused.field, str(refused))
        return self.cleaned_data
