from django.core.exceptions import ValidationError
from django.db import models

from core import health

from .templates_library import TEMPLATES

MAX_SCRIPT_BYTES = 64 * 1024


def validate_script_text(text):
    if not text or not text.strip():
        raise ValidationError("The script is empty.")
    if len(text.encode()) > MAX_SCRIPT_BYTES:
        raise ValidationError(f"The script is larger than {MAX_SCRIPT_BYTES // 1024} KiB.")
    if any(ord(c) < 32 and c not in "\t\n\r" for c in text):
        raise ValidationError("The script is not valid text: it holds control characters "
                              "(is it a binary file?).")


class HealthCheckScript(models.Model):
    """An external health-check script, run for each real server of the services using it."""

    class Type(models.TextChoices):
        VIRTUAL_SERVICE = "virtual", "Virtual Service"

    name = models.CharField(max_length=64, unique=True,
                            error_messages={"unique": "Another health check has this name."})
    type = models.CharField(max_length=16, choices=Type.choices, default=Type.VIRTUAL_SERVICE)
    template = models.CharField(max_length=64, blank=True,
                                choices=[("", "(none)")] + [(n, n) for n in TEMPLATES])
    script = models.TextField(validators=[validate_script_text])

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name


class HealthEvent(models.Model):
    """A line of Logs > Health checks: a transition and what decided it."""

    at = models.DateTimeField(auto_now_add=True, db_index=True)
    real_server_id = models.BigIntegerField(null=True)
    where = models.CharField(max_length=200)  # "PrimaryCluster (192.0.2.110) of VNA"
    event = models.CharField(max_length=16)  # down / up
    message = models.CharField(max_length=500)
    output = models.TextField(blank=True)

    class Meta:
        ordering = ["-at", "-id"]

    def __str__(self):
        return f"{self.where} {self.event}: {self.message}"


class ServerHealth(models.Model):
    """A real server's health as of its last transition: Redis keeps nothing across a restart
    or a reboot, so this is what puts a failed server back out of service then (see
    core.health). One row per real server, written with each transition's HealthEvent."""

    real_server = models.OneToOneField("clusters.RealServer", on_delete=models.CASCADE,
                                       primary_key=True, related_name="+")
    state = models.CharField(max_length=8)  # up / down
    changed_at = models.FloatField()  # when the deciding check ran (a Unix time)
    fingerprint = models.CharField(max_length=64, blank=True)  # of what was checked
    message = models.CharField(max_length=500, blank=True)

    def __str__(self):
        return f"real server {self.real_server_id} {self.state}"


def stored_health():
    """{real server id: Health} of the servers the database says are down: core.health's
    loader, used when Redis lost the health keys. The servers up need nothing: a server Redis
    knows nothing of is up."""
    return {row.real_server_id: health.Health(state=row.state, checked_at=row.changed_at,
                                              message=row.message,
                                              fingerprint=row.fingerprint)
            for row in ServerHealth.objects.filter(state="down")}
