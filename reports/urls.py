from django.urls import path

from . import configuration, graphs, layer4_views, logs, support, traffic, views

# Under View Configuration (the "view" namespace)
view_patterns = [
    path("layer4/", views.layer4_configuration, name="layer4"),
    path("layer4/rebuild/", views.rebuild_layer4, name="layer4-rebuild"),
    path("network/", views.network_configuration, name="network"),
    path("appliance/", configuration.appliance_configuration, name="appliance"),
]
# Under Reports
reports_patterns = [
    path("layer4-status/", layer4_views.layer4_status_page, name="layer4-status"),
    path("layer4-traffic/", traffic.traffic_rate, name="layer4-traffic"),
    path("layer4-connections/", layer4_views.layer4_connections_page,
         name="layer4-connections"),
    path("graphs/", graphs.graphs, name="graphs"),
    path("graphs/data/", graphs.graph_data, name="graphs-data"),
]
# Under Logs (the "logs" namespace); Logs › Health Checks is healthchecks'
logs_patterns = [
    path("layer4/", logs.layer4_log, name="layer4"),
    path("user/", views.user_log, name="user"),
    path("system/", logs.system_log, name="system"),
]
# Under Support
support_patterns = [
    path("download/", support.support_download, name="download"),
    path("contact/", support.contact, name="contact"),
    path("links/", support.useful_links, name="links"),
    path("documentation/", support.documentation, name="documentation"),
]
