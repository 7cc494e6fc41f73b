from django.urls import path

from appliance.navigation import not_built_urls

from . import views

maintenance_patterns = [
    path("passwords/", views.passwords, name="passwords"),
    path("backup-restore/", views.backup_restore, name="backup-restore"),
] + not_built_urls("maintenance", built=("passwords", "backup-restore"))
