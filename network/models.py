from django.db import models

from core.configuration import INTERFACE, Holder


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
    """A change that removed the address the browser used: it must be confirmed from the new
    address in time, or the worker puts `previous` back."""

    token = models.CharField(max_length=64, unique=True)
    created = models.DateTimeField(auto_now_add=True)
    deadline = models.DateTimeField()
    previous = models.JSONField()
    confirmed = models.BooleanField(default=False)
    rolled_back = models.BooleanField(default=False)

    class Meta:
        db_table = "appliance_pendingnetworkchange"  # made by 0.1.0 (appliance)

    def __str__(self):
        return f"pending network change {self.token[:8]}"


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
