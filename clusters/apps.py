from django.apps import AppConfig

from core import configuration, signals


class ClustersConfig(AppConfig):
    name = "clusters"
    verbose_name = "Cluster Configuration"

    def ready(self):
        from . import models, services  # app loading: models import once the apps are ready

        configuration.register_address_provider(models.addresses_held)
        signals.network_applied.connect(services.place_addresses_again,
                                        dispatch_uid="clusters-place-addresses")
