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
