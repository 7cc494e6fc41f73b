from django import forms

from .pairing import local_refusal, own_addresses


class PairForm(forms.Form):
    """Create a Clustered Pair (the guide's 10.1.2)."""

    local_ip = forms.ChoiceField(label="Local IP address",
                                 help_text="This appliance's address the pair uses "
                                           "(its own, never a VIP or floating IP).")
    peer_ip = forms.GenericIPAddressField(label="IP address of new peer", unpack_ipv4=True)
    password = forms.CharField(label="Password for loadbalancer user on peer", max_length=4096,
                               strip=False, widget=forms.PasswordInput(render_value=False))

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        addresses = own_addresses()
        self.fields["local_ip"].choices = [(a, a) for a in addresses]
        if not addresses:
            self.fields["local_ip"].help_text = (
                "This appliance has no address configured: set one under Local Configuration › "
                "Network Interface Configuration.")

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("local_ip") and cleaned.get("peer_ip"):
            refused = local_refusal(cleaned["local_ip"], cleaned["peer_ip"])
            if refused:
                self.add_error(refused[1], refused[0])
        return cleaned
