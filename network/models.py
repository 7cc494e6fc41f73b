import ipaddress
import re

from django.core.exceptions import ValidationError
from django.db import models

from core.configuration import INTERFACE, Holder
from core.graphing import DEFAULT_INTERVAL, INTERVALS


class NetworkConfiguration(models.Model):
    """Local Configuration as lbadmin applies it (one row): interface addresses and MTUs,
    VLANs, gateways and static routes, hostname and DNS. The dataplane worker applies it and
    re-applies it when it starts."""

    interfaces = models.JSONField(default=dict)  # {"eth1": {"addresses": [...], "mtu": 1500}}
    vlans = models.JSONField(default=list)  # [["eth0", 100], ...]
    gateway4 = models.CharField("Default Gateway IPv4", max_length=15, blank=True)
    gateway6 = models.CharField("Default Gateway IPv6", max_length=39, blank=True)
    routes = models.JSONField(default=list)  # [{"destination": cidr, "gateway": ip}]
    hostname = models.CharField(max_length=63, default="lbadmin")
    dns = models.JSONField(default=list)  # up to three addresses

    class Meta:
        db_table = "appliance_networkconfiguration"  # made by 0.1.0, when it lived in appliance

    def __str__(self):
        return "network configuration"

    @classmethod
    def load(cls):
        return cls.objects.get_or_create(pk=1)[0]

    def as_dict(self):
        return {"interfaces": self.interfaces, "vlans": self.vlans, "gateway4": self.gateway4,
                "gateway6": self.gateway6, "routes": self.routes}


class PendingNetworkChange(models.Model):
    """A change held by the lock-out guard (network.guard): applied, but kept only if it is
    confirmed in time from where its kind says; else the dataplane worker puts `previous`
    back. `kind` names who owns it and knows how ("network": Local Configuration's
    interfaces, VLANs and routes; "lockdown": the Firewall Lockdown Wizard's)."""

    kind = models.CharField(max_length=32, default="network")
    token = models.CharField(max_length=64, unique=True)
    created = models.DateTimeField(auto_now_add=True)
    deadline = models.DateTimeField()
    previous = models.JSONField()  # the kind's settings before the change
    # the browser that made the change, as its kind judged it (network.guard.Browser)
    browser = models.CharField(max_length=45, blank=True)
    confirmed = models.BooleanField(default=False)
    rolled_back = models.BooleanField(default=False)

    class Meta:
        db_table = "appliance_pendingnetworkchange"  # made by 0.1.0 (appliance)

    def __str__(self):
        return f"pending {self.kind} change {self.token[:8]}"


def addresses_held():
    """The appliance's own interface addresses, as configured, for the rules over the whole
    configuration (core.configuration; registered by NetworkConfig.ready)."""
    stored = NetworkConfiguration.objects.filter(pk=1).first()
    if stored is None:
        return []
    return [Holder(cidr.split("/")[0], INTERFACE, f"the address of interface {name}",
                   ("interface", name))
            for name, settings in sorted(stored.interfaces.items())
            for cidr in settings.get("addresses", [])]


class GraphingSettings(models.Model):
    """Local Configuration › Graphing (one row): how often the graphs' sampler runs and
    whether it keeps each real server's series (the most numerous: five per real server)."""

    interval = models.PositiveSmallIntegerField(
        "Sample every", default=DEFAULT_INTERVAL,
        choices=[(seconds, f"{seconds} s") for seconds in INTERVALS])
    real_servers = models.BooleanField("Keep real servers' graphs", default=True)

    def __str__(self):
        return "graphing settings"

    @classmethod
    def load(cls):
        """The stored row, or the defaults (unsaved: the sampler reads, never writes)."""
        return cls.objects.filter(pk=1).first() or cls(pk=1)


class DateTimeSettings(models.Model):
    """Local Configuration › System Date & time (one row): the time zone the WebUI shows
    times in, and up to three NTP servers chronyd follows (network.chrony writes its file)."""

    # "" until saved: LBADMIN_TIME_ZONE (settings.TIME_ZONE) holds
    time_zone = models.CharField("Select Timezone", max_length=64, blank=True, default="")
    ntp_servers = models.JSONField(default=list)  # host names or addresses, up to three

    def __str__(self):
        return "date and time settings"

    @classmethod
    def load(cls):
        """The stored row, or the defaults (unsaved)."""
        return cls.objects.filter(pk=1).first() or cls(pk=1)


# ---- SNMP Configuration ---------------------------------------------------------------------
# The rules of every value snmpd.conf is rendered from (network.snmpd): each is written on one
# line of that file, some inside double quotes, so what could end a word, a quoted string or
# the line is refused here rather than escaped there.
SNMP_WORD = re.compile(r"^[!$-&(-\[\]-~]{8,32}$")  # printable ASCII; no space, " ' # or \
SNMP_USER = re.compile(r"^[A-Za-z0-9._-]{1,32}$")
SNMP_PASSPHRASE = re.compile(r'^[ !#-\[\]-~]{8,64}$')  # printable ASCII and space; no " or \
SNMP_LINE = re.compile(r"^[^\x00-\x1f\x7f]*$")


def validate_snmp_community(value):
    if not SNMP_WORD.match(value):
        raise ValidationError("A community is a password: 8 to 32 printable characters, with "
                              "no space and none of \" ' # \\.")


def validate_snmp_user(value):
    if not SNMP_USER.match(value):
        raise ValidationError("A user name is 1 to 32 letters, digits, dots, hyphens or "
                              "underscores.")


def validate_snmp_passphrase(value):
    if not SNMP_PASSPHRASE.match(value):
        raise ValidationError("A passphrase is 8 to 64 printable characters (spaces allowed), "
                              "with no \" or \\.")


def validate_snmp_line(value):
    if not SNMP_LINE.match(value):
        raise ValidationError("Write it on one line.")


def validate_source_network(value):
    """An IPv4 network in CIDR form (snmpd listens on IPv4, udp:161); a bare address is
    taken as that one host (/32) by the form."""
    try:
        ipaddress.IPv4Network(value, strict=True)
    except ValueError:
        if "/" in value:
            try:
                network = ipaddress.IPv4Network(value, strict=False)
            except ValueError:
                pass
            else:
                raise ValidationError(f"{value} has host bits set: the network is {network}."
                                      ) from None
        raise ValidationError(f"“{value}” is not an IPv4 network in CIDR form, e.g. "
                              "198.51.100.0/24.") from None


class SnmpSettings(models.Model):
    """Local Configuration › SNMP Configuration (one row): snmpd answers SNMP v2c from one
    source network with a community, SNMP v3 for one user with SHA authentication and AES
    privacy, or both. Not replicated to a pair's Secondary (the guide's 10.1.1) and not in
    backups: the secrets stay on this appliance (the Support Download removes them too)."""

    class AuthProtocol(models.TextChoices):
        SHA256 = "SHA-256", "SHA-256"
        SHA = "SHA", "SHA (SHA-1)"

    class PrivProtocol(models.TextChoices):
        AES = "AES", "AES (128-bit)"

    enabled = models.BooleanField("Enable SNMP", default=False)
    v2c_enabled = models.BooleanField("SNMP v2c", default=False)
    community = models.CharField("Community", max_length=32, blank=True,
                                 validators=[validate_snmp_community])
    source_network = models.CharField(
        "Allowed source network", max_length=18, blank=True,
        validators=[validate_source_network],
        help_text="Only this IPv4 network may ask with the community, e.g. 198.51.100.0/24.")
    v3_enabled = models.BooleanField("SNMP v3", default=False)
    v3_user = models.CharField("User name", max_length=32, blank=True,
                               validators=[validate_snmp_user])
    auth_protocol = models.CharField("Authentication protocol", max_length=8,
                                     choices=AuthProtocol.choices, default=AuthProtocol.SHA256)
    auth_passphrase = models.CharField("Authentication passphrase", max_length=64, blank=True,
                                       validators=[validate_snmp_passphrase])
    priv_protocol = models.CharField("Privacy protocol", max_length=8,
                                     choices=PrivProtocol.choices, default=PrivProtocol.AES)
    priv_passphrase = models.CharField("Privacy passphrase", max_length=64, blank=True,
                                       validators=[validate_snmp_passphrase])
    location = models.CharField("Location (sysLocation)", max_length=255, blank=True,
                                validators=[validate_snmp_line])
    contact = models.CharField("Contact (sysContact)", max_length=255, blank=True,
                               validators=[validate_snmp_line])

    SECRETS = ("community", "auth_passphrase", "priv_passphrase")

    def __str__(self):
        return "SNMP settings"

    @classmethod
    def load(cls):
        """The stored row, or the defaults (unsaved: SNMP off)."""
        return cls.objects.filter(pk=1).first() or cls(pk=1)

    def clean(self):
        errors = {}
        if self.v2c_enabled:
            if not self.community:
                errors["community"] = "Enter the community (8 to 32 characters)."
            if not self.source_network:
                errors["source_network"] = ("Enter the network allowed to ask, e.g. "
                                            "198.51.100.0/24.")
        if self.v3_enabled:
            if not self.v3_user:
                errors["v3_user"] = "Enter the SNMP v3 user name."
            for field in ("auth_passphrase", "priv_passphrase"):
                if not getattr(self, field):
                    errors[field] = "Enter a passphrase of at least 8 characters."
        if self.enabled and not (self.v2c_enabled or self.v3_enabled):
            errors["enabled"] = ("Choose SNMP v2c, SNMP v3 or both: with neither, nobody "
                                 "could ask.")
        if errors:
            raise ValidationError(errors)

    def secrets(self):
        """The secret values set (for the Support Download's scrubber)."""
        return [value for value in (getattr(self, name) for name in self.SECRETS) if value]
