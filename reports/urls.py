from django.urls import path

from appliance.navigation import not_built_urls

from . import views

view_patterns = [
    path("layer4/", views.layer4_configuration, name="layer4"),
    path("layer4/rebuild/", views.rebuild_layer4, name="layer4-rebuild"),
] + not_built_urls("view", built=("layer4",))
reports_patterns = not_built_urls("reports")
logs_patterns = [
    path("user/", views.user_log, name="user"),
] + not_built_urls("logs", built=("user",))
support_patterns = not_built_urls("support")
