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


class FailedLogin(models.Model):
    """A refused login, kept to slow down password guessing from one address."""

    address = models.GenericIPAddressField()
    username = models.CharField(max_length=150)
    at = models.DateTimeField(auto_now_add=True, db_index=True)

    def __str__(self):
        return f"failed login for {self.username} from {self.address}"
