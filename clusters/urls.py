from django.urls import path

from . import views

overview_patterns = [
    path("", views.overview, name="index"),
    path("overview/services/", views.service_status, name="services"),
    path("overview/layer4/", views.layer4_table, name="layer4"),
    path("overview/apply-status/", views.apply_banner, name="apply-status"),
    path("overview/real-server/<int:pk>/state/", views.set_state, name="set-state"),
    path("overview/real-server/<int:pk>/health/", views.health_details, name="health"),
]

cluster_patterns = [
    path("virtual-services/", views.virtual_services, name="virtual-services"),
    path("virtual-services/add/", views.virtual_service_edit, name="virtual-service-add"),
    path("virtual-services/<int:pk>/", views.virtual_service_edit, name="virtual-service-edit"),
    path("virtual-services/<int:pk>/delete/", views.virtual_service_delete,
         name="virtual-service-delete"),
    path("real-servers/", views.real_servers, name="real-servers"),
    path("virtual-services/<int:service_pk>/real-servers/add/", views.real_server_edit,
         name="real-server-add"),
    path("real-servers/<int:pk>/", views.real_server_edit, name="real-server-edit"),
    path("real-servers/<int:pk>/delete/", views.real_server_delete, name="real-server-delete"),
    path("floating-ips/", views.floating_ips, name="floating-ips"),
    path("floating-ips/<int:pk>/remove/", views.floating_ip_remove, name="floating-ip-remove"),
    path("layer4-advanced/", views.layer4_advanced, name="layer4-advanced"),
    path("layer4-advanced/test-alert/", views.send_test_alert, name="test-alert"),
    path("layer4-advanced/test-alert/result/", views.test_alert_result,
         name="test-alert-result"),
]
