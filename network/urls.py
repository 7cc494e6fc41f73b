from django.urls import path

from . import date_time, graphing, guard, licence, snmp, views

# Under Local Configuration (the "local" namespace)
local_patterns = [
    path("interfaces/", views.interfaces, name="interfaces"),
    path("interfaces/vlan/remove/", views.remove_vlan, name="vlan-remove"),
    # the lock-out guard's page for a held network change (network.guard)
    path("interfaces/confirm/<str:token>/", views.pending_change, {"kind": guard.NETWORK},
         name="network-confirm"),
    path("routing/", views.routing, name="routing"),
    path("hostname-dns/", views.hostname_dns, name="hostname-dns"),
    path("date-time/", date_time.date_time, name="date-time"),
    path("graphing/", graphing.graphing, name="graphing"),
    path("snmp/", snmp.snmp_configuration, name="snmp"),
    path("license/", licence.license_key, name="license"),
    path("portal/", licence.portal_management, name="portal"),
]
