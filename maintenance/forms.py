import urllib.parse

from django import forms
from django.core.exceptions import ValidationError
from django.core.validators import URLValidator

from . import fetch, online
from .models import OnlineUpdate


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
