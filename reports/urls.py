from django.urls import path

from . import views

# Under View Configuration (the "view" namespace)
view_patterns = [
    path("layer4/", views.layer4_configuration, name="layer4"),
    path("layer4/rebuild/", views.rebuild_layer4, name="layer4-rebuild"),
    path("network/", views.network_configuration, name="network"),
]
reports_patterns = []
# Under Logs (the "logs" namespace); Logs › Health Checks is healthchecks'
logs_patterns = [path("user/", views.user_log, name="user")]
support_patterns = []
