from django.urls import path

from . import views


def ha_patterns(authentication_form):
    """Cluster Configuration › High-Availability Configuration and the endpoints the other
    node calls. `authentication_form` checks the pairing call's password: the project passes
    the login's throttled form (ha sits below the project package, so it is handed in)."""
    return [
        path("ha/", views.high_availability, name="ha"),
        path("ha/break/", views.break_pair, name="ha-break"),
        path("ha/peer/pair/", views.peer_pair, {"authentication_form": authentication_form},
             name="ha-peer-pair"),
        path("ha/peer/replicate/", views.peer_replicate, name="ha-peer-replicate"),
        path("ha/peer/actions/", views.peer_actions, name="ha-peer-actions"),
        path("ha/peer/status/", views.peer_status, name="ha-peer-status"),
        path("ha/peer/break/", views.peer_break, name="ha-peer-break"),
    ]
