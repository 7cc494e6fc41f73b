from django.apps import AppConfig

from core import signals


class MaintenanceConfig(AppConfig):
    name = "maintenance"
    verbose_name = "Maintenance"

    def ready(self):
        # App loading: these import models, ready once apps are loaded. firewall_tasks: the
        # firewall's tasks (celery's discovery imports tasks.py only) and their worker_ready
        # receiver, which puts the firewall back when the dataplane worker starts.
        from network import guard  # app loading: it imports network's models

        from . import firewall, firewall_services, firewall_tasks, revisions  # noqa: F401

        signals.configuration_changed.connect(revisions.record_revision,
                                              dispatch_uid="maintenance-revisions")
        # the lockdown is held by the network changes' lock-out guard: how it is undone, who
        # may keep it and the words of its page
        guard.register(firewall.LOCKDOWN, firewall_services.LOCKDOWN_CHANGE)
