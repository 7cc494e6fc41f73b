from django.apps import AppConfig

from core import pairing, signals


class HaConfig(AppConfig):
    name = "ha"
    verbose_name = "High-Availability Configuration"

    def ready(self):
        from . import receivers, vrrp  # app loading: they import models, ready once loaded

        signals.configuration_changed.connect(receivers.on_configuration_changed,
                                              dispatch_uid="ha-replicate-on-change")
        signals.users_changed.connect(receivers.on_users_changed,
                                      dispatch_uid="ha-replicate-on-users-change")
        # When paired, keepalived (not the dataplane worker) holds the VIPs and floating IPs.
        pairing.register_address_owner(vrrp.address_owner)
