from django.core.exceptions import ValidationError
from django.db import models

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
