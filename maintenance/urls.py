from django.urls import path

from . import views

maintenance_patterns = [
    path("passwords/", views.passwords, name="passwords"),
    path("software-update/", views.software_update, name="software-update"),
    path("software-update/online/check/", views.check_online, name="update-check"),
    path("software-update/online/install/", views.install_online, name="update-online"),
    path("software-update/<int:pk>/", views.update_job, name="update-job"),
    path("restart-services/", views.restart_services, name="restart-services"),
    path("restart-services/<str:name>/restart/", views.restart_service, name="restart-service"),
    path("backup-restore/", views.backup_restore, name="backup-restore"),
    path("backup-restore/history/", views.history, name="history"),
    path("backup-restore/history/<int:pk>/roll-back/", views.roll_back, name="roll-back"),
]
