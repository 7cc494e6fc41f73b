from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_not_required
from django.urls import include, path
from django.views.generic import RedirectView

from appliance.navigation import not_built_urls
from clusters.urls import cluster_patterns, overview_patterns
from maintenance.urls import maintenance_patterns
from reports.urls import logs_patterns, reports_patterns, support_patterns, view_patterns

from . import views, views_network
from .login import ThrottledAuthenticationForm

local_patterns = [
    path("interfaces/", views_network.interfaces, name="interfaces"),
    path("interfaces/vlan/remove/", views_network.remove_vlan, name="vlan-remove"),
    path("interfaces/confirm/<str:token>/", views_network.confirm, name="network-confirm"),
    path("interfaces/pending/<str:token>/", views_network.confirm_wait,
         name="network-confirm-wait"),
    path("routing/", views_network.routing, name="routing"),
    path("hostname-dns/", views_network.hostname_dns, name="hostname-dns"),
    path("advanced/", views.advanced_configuration, name="advanced"),
] + not_built_urls("local", built=("interfaces", "routing", "hostname-dns", "advanced"))

lbadmin_patterns = [
    path("login/", auth_views.LoginView.as_view(
        redirect_authenticated_user=True, authentication_form=ThrottledAuthenticationForm),
        name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("setup-wizard/", views.setup_wizard, name="setup-wizard"),
    path("setup-wizard/dismiss/", views.setup_wizard_dismiss, name="setup-wizard-dismiss"),
    path("", include((overview_patterns, "overview"))),
    path("local/", include((local_patterns, "local"))),
    path("cluster/", include((cluster_patterns, "cluster"))),
    path("maintenance/", include((maintenance_patterns, "maintenance"))),
    path("view/", include((view_patterns, "view"))),
    path("reports/", include((reports_patterns, "reports"))),
    path("logs/", include((logs_patterns, "logs"))),
    path("support/", include((support_patterns, "support"))),
]

urlpatterns = [
    path("", login_not_required(RedirectView.as_view(url="/lbadmin/", permanent=False))),
    path("lbadmin/", include(lbadmin_patterns)),
]
