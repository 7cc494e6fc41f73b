import ipaddress

from django import forms
from django.core.exceptions import ValidationError

from core.configuration import BACKEND, FLOATING, VIP, address_clash

from .models import AlertSettings, FloatingIP, RealServer, VirtualService
from .validators import validate_ipv4_host

# Shown beside NAT, disabled: a user of the appliance expects to see them, and why not here.
UNAVAILABLE_FORWARDING = (
    ("Direct Routing (DR)", "not available here: lbadmin's data plane rewrites addresses with "
                            "nftables (NAT); DR needs each real server to hold the VIP on a "
                            "loopback and answer clients directly."),
    ("Tunnel (TUN)", "not available here: IP-in-IP tunnelling to the real servers is not "
                     "part of lbadmin's nftables data plane."),
    ("Layer 7 (proxy)", "not available here: lbadmin is a Layer 4 load balancer."),
)
SCHEDULER_NOTE = (
    "Weighted Round Robin hands out new connections in turn, in proportion to the weights. "
    "Weighted Least-Connection is emulated, as nftlb does: nftables has no least-connection "
    "pick, so every 2 seconds the worker re-weights a random pick by weight ÷ (open "
    "connections + 1) from live conntrack counts."
)


def refuse_header_breaking(value, what, example):
    """A health check sends `value` in its HTTP request line or Host header: a control
    character (CR, LF, …) would end the line and inject headers or a second request, and a
    space or tab would split the request line."""
    bad = next((c for c in "\r\n" if c in value), None) or \
        next((c for c in value if ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0 or c.isspace()), None)
    if bad is not None:
        name = {"\r": "a carriage return (CR)", "\n": "a line feed (LF)", "\t": "a tab",
                " ": "a space"}.get(bad, f"the control character U+{ord(bad):04X}")
        raise ValidationError(f"The {what} may not contain {name}: it would break the HTTP "
                              f"request the check sends. Enter {example}.")
    return value


class VirtualServiceForm(forms.ModelForm):
    class Meta:
        model = VirtualService
        fields = ["label", "vip", "ports", "protocol", "forwarding", "scheduler", "persistent",
                  "persistence_timeout", "check_type", "check_script", "check_port",
                  "check_request", "check_host", "check_expect", "check_interval",
                  "check_timeout", "failure_count", "on_failure", "fallback_ip",
                  "fallback_port", "fallback_masq", "alert_address"]
        widgets = {
            "forwarding": forms.RadioSelect,
            "ports": forms.TextInput(attrs={"placeholder": "12000,12100 or 800-900"}),
        }
        help_texts = {
            "vip": "The address clients connect to, e.g. 198.51.100.100.",
            "ports": "A comma list of ports and ranges, e.g. 12000,12100,12200 or 800-900.",
            "scheduler": SCHEDULER_NOTE,
            "persistence_timeout": "Seconds a client keeps its real server after its last "
                                   "new connection (default 300).",
            "check_type": "External Script runs a script from Health Check Scripts; Connect to "
                          "Port needs every checked port to accept; Negotiate sends a GET and "
                          "reads the answer; Ping sends one echo request. Always On: every real "
                          "server takes connections. Always Off: none does, so connections go "
                          "to the fallback server.",
            "check_script": "Used when Check Type is External Script.",
            "check_interval": "Seconds between checks of each real server (default 30).",
            "check_timeout": "Seconds a check may take; a script still running is killed and "
                             "the check fails. Shorter than the interval.",
        }
        error_messages = {
            "check_interval": {"invalid": "Enter the interval as a whole number of seconds."},
            "check_timeout": {"invalid": "Enter the timeout as a whole number of seconds."},
            "failure_count": {"invalid": "Enter the failure count as a whole number."},
            "ports": {"required": "Enter at least one port, e.g. 80 or 12000,12100 or 800-900."},
            "vip": {"required": "Enter the address clients will connect to."},
            "alert_address": {"invalid": "Enter an email address such as "
                                         "pacs-team@example.org."},
        }

    def _own_keys(self):
        """The keys of this service's own stored addresses: they are being replaced by this
        form's values, so they clash with nothing; the service's VIP against its own fallback
        is the model's rule, over the values of this form."""
        pk = self.instance.pk
        return {("service", pk), ("fallback", pk)} if pk is not None else set()

    def clean_vip(self):
        vip = validate_ipv4_host(self.cleaned_data["vip"])
        clash = address_clash(vip, VIP, exclude=self._own_keys())
        if clash:
            raise ValidationError(clash)
        return vip

    def clean_check_request(self):
        return refuse_header_breaking(self.cleaned_data["check_request"], "request",
                                      "a path such as /health (spaces as %20)")

    def clean_check_host(self):
        return refuse_header_breaking(self.cleaned_data["check_host"], "virtual host",
                                      "a host name such as archive.example.org")

    def clean_fallback_ip(self):
        fallback = self.cleaned_data["fallback_ip"]
        if fallback:
            fallback = validate_ipv4_host(fallback)
            clash = address_clash(fallback, BACKEND, exclude=self._own_keys())
            if clash:
                raise ValidationError(clash)
        return fallback


class RealServerForm(forms.ModelForm):
    class Meta:
        model = RealServer
        fields = ["label", "ip", "port", "weight", "min_connections", "max_connections"]
        help_texts = {"weight": "0–65535; 0 takes no new connections. Default 100."}

    def __init__(self, *args, service, **kwargs):
        super().__init__(*args, **kwargs)
        self.instance.service = service

    def clean_label(self):
        label = self.cleaned_data["label"]
        others = RealServer.objects.filter(service=self.instance.service, label=label)
        if others.exclude(pk=self.instance.pk).exists():
            raise ValidationError("This virtual service already has a real server with this "
                                  "label.")
        return label

    def clean_ip(self):
        ip = validate_ipv4_host(self.cleaned_data["ip"])
        # Its own service's VIP is the model's rule ("the virtual service's own address").
        own = {("realserver", self.instance.pk), ("service", self.instance.service.pk)}
        clash = address_clash(ip, BACKEND, exclude=own)
        if clash:
            raise ValidationError(clash)
        return ip


class StateForm(forms.Form):
    state = forms.ChoiceField(choices=RealServer.State.choices)


class FloatingIPForm(forms.Form):
    address = forms.GenericIPAddressField(label="New Floating IP", protocol="IPv4")

    def __init__(self, *args, networks, **kwargs):
        super().__init__(*args, **kwargs)
        self.networks = networks

    def clean_address(self):
        address = self.cleaned_data["address"]
        parsed = ipaddress.ip_address(address)
        if FloatingIP.objects.filter(address=address).exists():
            raise ValidationError("This floating IP is already added.")
        clash = address_clash(address, FLOATING)
        if clash:
            raise ValidationError(clash)
        if not any(parsed.version == n.version and parsed in n for n in self.networks):
            raise ValidationError(f"{address} is outside every connected subnet: no "
                                  "interface could bring it up.")
        for network in self.networks:
            if parsed in network and parsed in (network.network_address,
                                                network.broadcast_address):
                raise ValidationError(f"{address} is the network or broadcast address of "
                                      f"{network}.")
        return address


class AlertSettingsForm(forms.ModelForm):
    """Layer 4 – Advanced Configuration › Alerts; restore and replication use it too."""

    webhook_url = forms.URLField(
        label=AlertSettings._meta.get_field("webhook_url").verbose_name, required=False,
        max_length=500, assume_scheme="https",
        error_messages={"invalid": "Enter an http:// or https:// address such as "
                                   "https://alerts.example.org/lbadmin."},
        help_text=AlertSettings._meta.get_field("webhook_url").help_text,
        widget=forms.TextInput(attrs={"placeholder": "https://alerts.example.org/lbadmin"}))

    class Meta:
        model = AlertSettings
        fields = ["source_address", "destination_address", "smart_host", "smart_host_port",
                  "webhook_url", "trap_host", "trap_port", "trap_community"]
        error_messages = {
            "source_address": {"invalid": "Enter an email address such as "
                                          "lbadmin@example.org."},
            "destination_address": {"invalid": "Enter an email address such as "
                                               "pacs-team@example.org."},
            "smart_host_port": {"invalid": "Enter the port as a whole number (25, 587)."},
            "trap_port": {"invalid": "Enter the port as a whole number (162)."},
        }

    def clean_webhook_url(self):
        url = self.cleaned_data["webhook_url"]
        if url and url.split(":", 1)[0].lower() not in ("http", "https"):
            raise ValidationError("Enter an http:// or https:// address such as "
                                  "https://alerts.example.org/lbadmin.")
        return url
