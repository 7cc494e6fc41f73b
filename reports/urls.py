from django.urls import path

from appliance.navigation import not_built_urls
from healthchecks.urls import log_patterns

from . import views

view_patterns = [
    path("layer4/", views.layer4_configuration, name="layer4"),
    path("layer4/rebuild/", views.rebuild_layer4, name="layer4-rebuild"),
    path("network/", views.network_configuration, name="network"),
] + not_built_urls("view", built=("layer4", "network"))
reports_patterns = not_built_urls("reports")
logs_patterns = [
    path("user/", views.user_log, name="user"),
    *log_patterns,
] + not_built_urls("logs", built=("user", "health-checks"))
support_patterns = not_built_urls("support")
