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
