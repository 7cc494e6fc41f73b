from django.apps import AppConfig

from core import configuration


class NetworkConfig(AppConfig):
    name = "network"
    verbose_name = "Local Configuration"

    def ready(self):
        from . import guard, models, services  # app loading: they import models

        configuration.register_address_provider(models.addresses_held)
        guard.register(guard.NETWORK, services.NETWORK_CHANGE)
