from django.apps import AppConfig

from core import configuration


class NetworkConfig(AppConfig):
    name = "network"
    verbose_name = "Local Configuration"

    def ready(self):
        from . import models  # app loading: models import once the apps are ready

        configuration.register_address_provider(models.addresses_held)
