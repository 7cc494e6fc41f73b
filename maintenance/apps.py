from django.apps import AppConfig

from core import signals


class MaintenanceConfig(AppConfig):
    name = "maintenance"
    verbose_name = "Maintenance"

    def ready(self):
        from . import revisions  # app loading: it imports models, ready once apps are loaded

        signals.configuration_changed.connect(revisions.record_revision,
                                              dispatch_uid="maintenance-revisions")
