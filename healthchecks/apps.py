from django.apps import AppConfig

from core import health


class HealthchecksConfig(AppConfig):
    name = "healthchecks"
    verbose_name = "Health checks"

    def ready(self):
        from . import models  # app loading: models import once the apps are ready

        health.register_loader(models.stored_health)
