from django.urls import path

from network import views as network_views

from . import firewall, firewall_views, users_views, views

maintenance_patterns = [
    path("passwords/", views.passwords, name="passwords"),
    path("passwords/users/add/", users_views.user_add, name="user-add"),
    path("passwords/users/<int:pk>/", users_views.user_edit, name="user-edit"),
    path("passwords/users/<int:pk>/remove/", users_views.user_remove, name="user-remove"),
    path("software-update/", views.software_update, name="software-update"),
    path("software-update/online/check/", views.check_online, name="update-check"),
    path("software-update/online/install/", views.install_online, name="update-online"),
    path("software-update/<int:pk>/", views.update_job, name="update-job"),
    path("restart-services/", views.restart_services, name="restart-services"),
    path("restart-services/<str:name>/restart/", views.restart_service, name="restart-service"),
    path("backup-restore/", views.backup_restore, name="backup-restore"),
    path("backup-restore/history/", views.history, name="history"),
    path("backup-restore/history/<int:pk>/roll-back/", views.roll_back, name="roll-back"),
    path("firewall-lockdown/", firewall_views.firewall_lockdown, name="firewall-lockdown"),
    # the lock-out guard's page for a held lockdown: the network changes' (network.guard)
    path("firewall-lockdown/pending/<str:token>/", network_views.pending_change,
         {"kind": firewall.LOCKDOWN}, name="firewall-lockdown-pending"),
    path("firewall-script/", firewall_views.firewall_script, name="firewall-script"),
]
