from django.conf import settings
from django.db import models


class Preferences(models.Model):
    """What the WebUI remembers per user, such as the answer to the Setup Wizard question."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    setup_wizard_dismissed = models.BooleanField(default=False)

    class Meta:
        verbose_name_plural = "preferences"

    def __str__(self):
        return f"preferences of {self.user}"


class AuditEntry(models.Model):
    """Every change made through the WebUI: who, when, what (Logs > User Log)."""

    at = models.DateTimeField(auto_now_add=True, db_index=True)
    user = models.CharField(max_length=150)
    action = models.CharField(max_length=300)

    class Meta:
        ordering = ["-at", "-id"]

    def __str__(self):
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.user}: {self.action}"


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

    def __str__(self):
        return "network configuration"

    @classmethod
    def load(cls):
        return cls.objects.get_or_create(pk=1)[0]

    def as_dict(self):
        return {"interfaces": self.interfaces, "vlans": self.vlans, "gateway4": self.gateway4,
                "gateway6": self.gateway6, "routes": self.routes}


class PendingNetworkChange(models.Model):
    """A change that removed the address the browser used: it must be confirmed from the new
    address in time, or the worker puts `previous` back."""

    token = models.CharField(max_length=64, unique=True)
    created = models.DateTimeField(auto_now_add=True)
    deadline = models.DateTimeField()
    previous = models.JSONField()
    confirmed = models.BooleanField(default=False)
    rolled_back = models.BooleanField(default=False)

    def __str__(self):
        return f"pending network change {self.token[:8]}"


class FailedLogin(models.Model):
    """A refused login, kept to slow down password guessing from one address."""

    address = models.GenericIPAddressField()
    username = models.CharField(max_length=150)
    at = models.DateTimeField(auto_now_add=True, db_index=True)

    def __str__(self):
        return f"failed login for {self.username} from {self.address}"
