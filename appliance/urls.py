"""The project's URLs: each menu section's pages come from the app that owns them (one app per
menu), and every page of the guide's menu not built yet gets an honest "not built" page."""

from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_not_required
from django.urls import include, path
from django.views.generic import RedirectView

from api import views as api_views
from clusters.urls import cluster_patterns, overview_patterns
from ha.urls import ha_patterns
from healthchecks.urls import log_patterns as health_log_patterns
from healthchecks.urls import script_patterns
from maintenance import views as maintenance_views
from maintenance.security_views import security_page
from maintenance.urls import maintenance_patterns
from network.urls import local_patterns
from reports.metrics import metrics
from reports.urls import logs_patterns, reports_patterns, support_patterns, view_patterns

from . import views
from .login import ThrottledAuthenticationForm
from .navigation import with_not_built

lbadmin_patterns = [
    path("login/", auth_views.LoginView.as_view(
        redirect_authenticated_user=True, authentication_form=ThrottledAuthenticationForm),
        name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("setup-wizard/", views.setup_wizard, name="setup-wizard"),
    path("setup-wizard/dismiss/", views.setup_wizard_dismiss, name="setup-wizard-dismiss"),
    path("", include((overview_patterns, "overview"))),
    path("local/", include((with_not_built("local", [
        *local_patterns,
        # Physical – Advanced Configuration sits in Local Configuration's menu, as in the
        # guide; what it sets (the online update check) is Software Update's.
        path("advanced/", maintenance_views.advanced_configuration, name="advanced"),
        path("security/", security_page, name="security"),
        path("api-keys/", api_views.api_keys, name="api-keys"),
        path("api-keys/<int:pk>/revoke/", api_views.api_key_revoke, name="api-key-revoke"),
    ]), "local"))),
    path("cluster/", include((with_not_built("cluster", [
        *cluster_patterns, *script_patterns,
        # the pairing call's password goes through the login's throttle (appliance.login)
        *ha_patterns(authentication_form=ThrottledAuthenticationForm),
    ]), "cluster"))),
    path("maintenance/", include((with_not_built("maintenance", maintenance_patterns),
                                  "maintenance"))),
    path("view/", include((with_not_built("view", view_patterns), "view"))),
    path("reports/", include((with_not_built("reports", reports_patterns), "reports"))),
    path("logs/", include((with_not_built("logs", [*logs_patterns, *health_log_patterns]),
                           "logs"))),
    path("support/", include((with_not_built("support", [
        *support_patterns,
        # the REST API's browsable OpenAPI document, linked from Useful Links
        path("rest-api/", api_views.rest_api_docs, name="rest-api"),
    ]), "support"))),
]

urlpatterns = [
    path("", login_not_required(RedirectView.as_view(url="/lbadmin/", permanent=False))),
    path("lbadmin/", include(lbadmin_patterns)),
    # Prometheus, on the WebUI's port: its own bearer token, not the admin session
    path("metrics", metrics, name="metrics"),
    # The REST API (/api/v1/) and the commercial appliance's API v2 (/api/v2/): API keys
    path("api/", include("api.urls")),
]
