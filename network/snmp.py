"""Local Configuration › SNMP Configuration: the form and the page. The rules are the model's
(SnmpSettings: field validators and clean); the effect is network.snmpd's."""

from django import forms
from django.contrib import messages
from django.shortcuts import redirect, render

from . import services
from .models import SnmpSettings
from .snmpd import LBADMIN_OID, VIEW

KEEP_HELP = "Saved (hidden). Leave blank to keep it; type a new one to change it."


class SnmpForm(forms.ModelForm):
    """The secrets (community, passphrases) are never sent back to the browser: a blank one
    keeps what is saved."""

    class Meta:
        model = SnmpSettings
        fields = ("enabled", "v2c_enabled", "community", "source_network", "v3_enabled",
                  "v3_user", "auth_protocol", "auth_passphrase", "priv_protocol",
                  "priv_passphrase", "location", "contact")
        widgets = {name: forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"})
                   for name in SnmpSettings.SECRETS}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name in SnmpSettings.SECRETS:
            if getattr(self.instance, name):
                self.fields[name].help_text = KEEP_HELP
                self.fields[name].widget.attrs["placeholder"] = "••••••••"

    def clean_source_network(self):
        value = self.cleaned_data["source_network"].strip()
        # a single host needs no prefix: it is that host, /32
        return f"{value}/32" if value and "/" not in value else value

    def _kept(self, name):
        return self.cleaned_data[name] or getattr(self.instance, name)

    def clean_community(self):
        return self._kept("community")

    def clean_auth_passphrase(self):
        return self._kept("auth_passphrase")

    def clean_priv_passphrase(self):
        return self._kept("priv_passphrase")


def snmp_configuration(request):
    stored = SnmpSettings.load()
    enabled = stored.enabled  # as saved: binding the form changes `stored` in place
    form = SnmpForm(request.POST or None, instance=stored)
    if request.method == "POST" and form.is_valid():
        problem = services.do_save_snmp(form.save(commit=False), request.user)
        if problem:
            messages.error(request, f"Saved, but not in effect yet: {problem}")
        elif form.instance.enabled:
            messages.success(request, "SNMP settings saved; snmpd is restarting with them.")
        else:
            messages.success(request, "SNMP settings saved; the SNMP agent is off.")
        return redirect("local:snmp")
    return render(request, "network/snmp.html", {
        "page_title": "SNMP Configuration", "form": form, "enabled": enabled,
        "lbadmin_oid": LBADMIN_OID, "view": VIEW})
