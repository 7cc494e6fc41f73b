from django.urls import path

from . import views

# Under Cluster Configuration (the "cluster" namespace)
script_patterns = [
    path("health-check-scripts/", views.script_list, name="health-check-scripts"),
    path("health-check-scripts/add/", views.script_edit, name="health-check-add"),
    path("health-check-scripts/template/", views.template_text, name="health-check-template"),
    path("health-check-scripts/<int:pk>/", views.script_edit, name="health-check-edit"),
    path("health-check-scripts/<int:pk>/delete/", views.script_delete,
         name="health-check-delete"),
]
# Under Logs (the "logs" namespace)
log_patterns = [path("health-checks/", views.health_log, name="health-checks")]
