"""The clustered pair as this appliance sees it (one row), the Halt/Drain/Online actions a
Secondary took locally and has not yet handed to the Primary, and when each configuration
generation was made (so "the later action wins" can compare times)."""

from django.db import models


class Pair(models.Model):
    """This appliance's place in a clustered pair: a singleton (pk=1, `Pair.load()`).

    ha.render/ha.vrrp read `role`, `local_ip`, `peer_ip` and `virtual_router_id` to decide
    whether keepalived owns the VIPs: keep those names."""

    class Role(models.TextChoices):
        STANDALONE = "standalone", "Standalone"
        PRIMARY = "primary", "Primary"
        SECONDARY = "secondary", "Secondary"

    class Status(models.TextChoices):
        IDLE = "", "—"
        PAIRING = "pairing", "Attempting to pair.."
        CONFIGURING = "configuring", "configuring"
        PAIRED = "paired", "paired"
        FAILED = "failed", "failed"
        BREAKING = "breaking", "breaking the pair"

    role = models.CharField(max_length=10, choices=Role.choices, default=Role.STANDALONE)
    local_ip = models.GenericIPAddressField(null=True, blank=True)
    peer_ip = models.GenericIPAddressField(null=True, blank=True)
    # HMAC-SHA256 key of every call between the two (hex); never shown, never logged.
    secret = models.CharField(max_length=128, blank=True, default="")
    peer_fingerprint = models.CharField(max_length=64, blank=True, default="")  # sha256 hex
    peer_version = models.CharField(max_length=32, blank=True, default="")
    peer_hostname = models.CharField(max_length=255, blank=True, default="")
    # The pairing job (and the break job): what the page shows while it polls.
    status = models.CharField(max_length=12, choices=Status.choices, blank=True, default="")
    message = models.TextField(blank=True, default="")
    message_field = models.CharField(max_length=20, blank=True, default="")  # the form field
    # Replication (the Primary's view: what it sent and what the Secondary acknowledged; the
    # Secondary's: the generation it applied last, in both).
    generation_sent = models.PositiveBigIntegerField(default=0)
    generation_acked = models.PositiveBigIntegerField(default=0)
    last_error = models.TextField(blank=True, default="")
    last_contact = models.DateTimeField(null=True, blank=True)
    peer_state = models.CharField(max_length=10, blank=True, default="")  # active/passive/down
    virtual_router_id = models.PositiveSmallIntegerField(default=0)  # 1..255 once paired
    # Why keepalived/conntrackd could not be started or stopped (ha.vrrp), apart from the
    # replication's last_error so that one never hides the other.
    vrrp_error = models.TextField(blank=True, default="")
    # Split brain (ha.split_brain): both nodes held the addresses at once. Since when, who
    # else answered for which address and when last, whether this node (the Secondary) stepped
    # down (stopped its keepalived) and how many probes in a row found the addresses silent.
    # All cleared when it is over.
    split_brain_since = models.DateTimeField(null=True, blank=True)
    split_brain_at = models.DateTimeField(null=True, blank=True)
    split_brain_detail = models.CharField(max_length=300, blank=True, default="")
    stepped_down = models.BooleanField(default=False)
    split_brain_quiet = models.PositiveSmallIntegerField(default=0)

    class Meta:
        verbose_name = "clustered pair"

    def __str__(self):
        return f"{self.get_role_display()} ({self.local_ip or 'no pair'})"

    @classmethod
    def load(cls):
        return cls.objects.get_or_create(pk=1)[0]

    @property
    def paired(self):
        return self.role != self.Role.STANDALONE

    @property
    def split_brain(self):
        return self.split_brain_since is not None


class PendingAction(models.Model):
    """A Halt, Drain or Online taken on the Secondary (applied there at once), waiting to be
    handed to the Primary by the catch-up task; deleted once the Primary has decided on it."""

    server_id = models.PositiveBigIntegerField()
    state = models.CharField(max_length=10)
    at = models.DateTimeField()
    user = models.CharField(max_length=150)

    class Meta:
        ordering = ["at", "id"]

    def __str__(self):
        return f"{self.state} of real server {self.server_id} at {self.at:%H:%M:%S}"


class GenerationStamp(models.Model):
    """When a configuration generation was made here (on commit of its change), so the
    Primary can tell whether it changed a real server after a Secondary's action on it. A
    change made for a Secondary's action carries that action's time."""

    number = models.PositiveBigIntegerField(primary_key=True)
    at = models.DateTimeField()

    KEEP = 2000  # the newest stamps kept

    def __str__(self):
        return f"generation {self.number} at {self.at:%Y-%m-%d %H:%M:%S}"
