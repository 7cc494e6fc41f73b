from django.urls import path

from . import graphing, licence, views

# Under Local Configuration (the "local" namespace)
local_patterns = [
    path("interfaces/", views.interfaces, name="interfaces"),
    path("interfaces/vlan/remove/", views.remove_vlan, name="vlan-remove"),
    path("interfaces/confirm/<str:token>/", views.confirm, name="network-confirm"),
    path("interfaces/pending/<str:token>/", views.confirm_wait,
         name="network-confirm-wait"),
    path("routing/", views.routing, name="routing"),
    path("hostname-dns/", views.hostname_dns, name="hostname-dns"),
    path("graphing/", graphing.graphing, name="graphing"),
    path("license/", licence.license_key, name="license"),
    path("portal/", licence.portal_management, name="portal"),
]
