from django.urls import path

from appliance.navigation import not_built_urls

from . import views

overview_patterns = [
    path("", views.overview, name="index"),
    path("overview/services/", views.service_status, name="services"),
]

cluster_patterns = not_built_urls("cluster")
