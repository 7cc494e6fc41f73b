from django.conf import settings
from django.db import models


class AuditEntry(models.Model):
    """Every change made through the WebUI: who, when, what (Logs > User Log)."""

    at = models.DateTimeField(auto_now_add=True, db_index=True)
    user = models.CharField(max_length=150)
    action = models.CharField(max_length=300)

    class Meta:
        ordering = ["-at", "-id"]
        db_table = "appliance_auditentry"  # made by release 0.1.0, when it lived in appliance

    def __str__(self):
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.user}: {self.action}"


class UserRole(models.Model):
    """A WebUI user's role (core.roles says what each may do): exactly one per user, kept
    beside Django's user rather than as auth Groups, so a user cannot hold two and the value
    is checked by full_clean like every other field."""

    class Role(models.TextChoices):
        CONFIG = "config", "config: everything"
        MAINT = "maint", "maint: maintenance actions, no configuration changes"
        REPORT = "report", "report: read only"

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                                primary_key=True, related_name="webui_role")
    role = models.CharField(max_length=10, choices=Role.choices)

    def __str__(self):
        return f"{self.user_id}: {self.role}"
