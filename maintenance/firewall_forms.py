from django import forms
from django.core.exceptions import ValidationError

from . import firewall
from .models import FirewallLockdown, FirewallScript


class LockdownForm(forms.ModelForm):
    """Firewall Lockdown Wizard. `browser` is the address the appliance sees this browser
    come from (REMOTE_ADDR: what the lockdown will judge), `peer` the HA peer (always
    admitted)."""

    outside = forms.BooleanField(
        label="Lock down anyway: this browser's address is not in the networks", required=False,
        help_text="This browser will not reach the WebUI once the lockdown is live. Confirm it "
                  "from an address the networks hold in time, or it is rolled back.")

    class Meta:
        model = FirewallLockdown
        fields = ["enabled", "networks"]
        widgets = {"networks": forms.Textarea(attrs={"rows": 4, "cols": 40})}
        help_texts = {
            "enabled": "New connections to the WebUI (HTTPS, and plain HTTP) and SSH are "
                       "admitted only from the administration networks, loopback and the HA "
                       "peer; open connections stay. Other traffic, the virtual services' "
                       "included, is not touched.",
            "networks": "One network a line in CIDR form (e.g. 192.0.2.0/24), IPv4 or IPv6; "
                        "an address alone is a /32 (/128).",
        }

    def __init__(self, *args, browser="", peer=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.browser, self.peer = browser, peer

    def clean_networks(self):
        try:
            networks = firewall.parse_networks(self.cleaned_data["networks"])
        except ValueError as problem:
            raise ValidationError(str(problem)) from None
        return "\n".join(str(network) for network in networks)

    def clean(self):
        cleaned = super().clean()
        if not cleaned.get("enabled") or "networks" not in cleaned:
            return cleaned
        networks = firewall.parse_networks(cleaned["networks"])
        if not networks:
            self.add_error("networks", "Enter at least one administration network: with "
                                       "none, only loopback and the HA peer could reach the "
                                       "WebUI.")
        elif not firewall.admits(networks, self.browser, self.peer) \
                and not cleaned.get("outside"):
            self.add_error("networks", f"Your browser's address {self.browser or '(unknown)'} "
                                       "is not in these networks: once they are live this "
                                       "browser could not reach the WebUI. Add it, or tick "
                                       "“Lock down anyway”.")
        return cleaned


class FirewallScriptForm(forms.ModelForm):
    """Firewall Script: chains, sets and rules only; lbadmin wraps them in its table."""

    class Meta:
        model = FirewallScript
        fields = ["script"]
        widgets = {"script": forms.Textarea(attrs={"rows": 18, "cols": 90,
                                                   "spellcheck": "false"})}
        help_texts = {
            "script": f"nftables chains, sets and rules, which lbadmin puts in its table "
                      f"`{firewall.SCRIPT_TABLE}` and applies as one transaction once "
                      "`nft -c` accepts them. Empty removes the table.",
        }

    def clean_script(self):
        script = self.cleaned_data["script"].replace("\r\n", "\n")
        try:
            firewall.check_script(script)
        except firewall.ScriptRefused as refused:
            raise ValidationError(str(refused)) from None
        return script
