from django.conf import settings
from django.db import models


class ApiKey(models.Model):
    """A key for the REST API and API v2 (Local Configuration › API Keys). The key itself is
    shown once, when made; only its SHA-256 is kept (32 random bytes need no slow hash: nobody
    can guess them, so the hash only has to keep a stolen database from being a key ring).
    Its rights are its user's role (core.roles)."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                             related_name="api_keys")
    name = models.CharField(max_length=64, help_text="What the key is for, e.g. ansible.")
    prefix = models.CharField(max_length=16, editable=False,
                              help_text="The key's first characters, to recognise it.")
    secret_hash = models.CharField(max_length=64, unique=True, editable=False)
    created = models.DateTimeField(auto_now_add=True)
    last_used = models.DateTimeField(null=True, blank=True, editable=False)
    revoked = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["-created", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["name"], condition=models.Q(revoked__isnull=True),
                                    name="api_key_name_unique_while_active",
                                    violation_error_message="An active API key already has "
                                                            "this name."),
        ]

    def __str__(self):
        return f"{self.name} ({self.prefix}…)"

    @property
    def active(self):
        return self.revoked is None
