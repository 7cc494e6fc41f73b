"""Who may do what: the one table of the WebUI's roles.

Every WebUI user has one of the appliance's three roles (the guide's appliance calls them
groups):

- `config`: everything.
- `maint`: reads everything; System Overview's Halt/Drain/Online, Restart Services, taking (not
  restoring) backups, software updates, rebuilding the live ruleset from the saved
  configuration, the support archive. It changes no configuration: no restore, no roll-back,
  no firewall, lockdown or HA pairing, no users.
- `report`: reads System Overview, View Configuration, Reports, Logs and Support's pages; may
  change only its own password.

Every request to a named URL is checked against PERMISSIONS by one middleware
(appliance.middleware.role_required), so no view can forget it; the templates hide what a role
cannot do from the same table (appliance.context_processors.roles). A URL name the table does
not know is refused to `maint` and `report` — and tests/unit/test_roles.py fails, naming it,
so a new page cannot be forgotten. Views Django's login_not_required marks (the login page,
/metrics with its own token, the HA peer's calls with the pairing secret) are outside the
table: an anonymous caller reaches them anyway; OPEN names them so that a new one is noticed.
"""

from dataclasses import dataclass, field

from django.conf import settings

from .models import UserRole

CONFIG, MAINT, REPORT = UserRole.Role.CONFIG, UserRole.Role.MAINT, UserRole.Role.REPORT
ROLE_WORDS = dict(UserRole.Role.choices)

EVERYONE = frozenset({CONFIG, MAINT, REPORT})
MAINTAINERS = frozenset({CONFIG, MAINT})
CONFIGURERS = frozenset({CONFIG})


@dataclass(frozen=True)
class Rule:
    """The roles that may GET (and HEAD) a URL, and the roles that may POST to it. A page
    whose POST does different things by the button pressed lists them in `buttons`: a POST
    carrying any of them needs the roles every one of them allows."""

    get: frozenset
    post: frozenset = CONFIGURERS
    buttons: dict = field(default_factory=dict)


def read(by=EVERYONE):
    """A page that only shows something: a POST to it is refused to all but `config`."""
    return Rule(get=by)


def action(by):
    """A POST-only action (its GET is refused by the view, 405, for those it allows)."""
    return Rule(get=by, post=by)


def settings_page(post=CONFIGURERS):
    """A page `maint` reads whose form saves configuration."""
    return Rule(get=MAINTAINERS, post=post)


CONFIG_ONLY = Rule(get=CONFIGURERS, post=CONFIGURERS)  # add/edit/delete pages: changes only

PERMISSIONS = {
    # the session and the user's own things
    "logout": action(EVERYONE),
    "setup-wizard": read(),
    "setup-wizard-dismiss": action(EVERYONE),  # the user's own answer to the question
    "maintenance:passwords": Rule(get=EVERYONE, post=EVERYONE),  # one's own password
    # System Overview
    "overview:index": read(),
    "overview:services": read(),
    "overview:layer4": read(),
    "overview:apply-status": read(),
    "overview:health": read(),
    "overview:set-state": action(MAINTAINERS),  # Halt, Drain, Online
    # Local Configuration
    "local:interfaces": settings_page(),
    "local:vlan-remove": CONFIG_ONLY,
    # the lock-out guard's page for a held network change; its POST keeps the change
    "local:network-confirm": settings_page(),
    "local:routing": settings_page(),
    "local:hostname-dns": settings_page(),
    "local:graphing": settings_page(),
    "local:advanced": settings_page(),
    "local:date-time": settings_page(),
    "local:portal": settings_page(),
    "local:security": settings_page(),
    "local:snmp": settings_page(),
    "local:license": settings_page(),
    # keys act as their user: only config makes or revokes them; maint sees the list
    "local:api-keys": settings_page(),
    "local:api-key-revoke": settings_page(),
    # Cluster Configuration
    "cluster:virtual-services": settings_page(),
    "cluster:virtual-service-add": CONFIG_ONLY,
    "cluster:virtual-service-edit": CONFIG_ONLY,
    "cluster:virtual-service-delete": CONFIG_ONLY,
    "cluster:real-servers": settings_page(),
    "cluster:real-server-add": CONFIG_ONLY,
    "cluster:real-server-edit": CONFIG_ONLY,
    "cluster:real-server-delete": CONFIG_ONLY,
    "cluster:floating-ips": settings_page(),
    "cluster:layer4-advanced": settings_page(),  # the alerts' settings
    "cluster:test-alert": action(MAINTAINERS),  # sends a test alert; changes nothing
    "cluster:test-alert-result": read(MAINTAINERS),
    "cluster:floating-ip-remove": CONFIG_ONLY,
    "cluster:health-check-scripts": settings_page(),
    "cluster:health-check-add": CONFIG_ONLY,
    "cluster:health-check-template": CONFIG_ONLY,  # fills the add/edit form's script
    "cluster:health-check-edit": CONFIG_ONLY,
    "cluster:health-check-delete": CONFIG_ONLY,
    "cluster:ha": settings_page(),
    "cluster:ha-break": CONFIG_ONLY,
    # Maintenance
    "maintenance:backup-restore": Rule(get=MAINTAINERS, post=CONFIGURERS, buttons={
        "download": MAINTAINERS, "restore": CONFIGURERS}),
    "maintenance:history": settings_page(),
    "maintenance:roll-back": CONFIG_ONLY,
    "maintenance:software-update": settings_page(post=MAINTAINERS),  # Upload and Install
    "maintenance:update-check": action(MAINTAINERS),
    "maintenance:update-online": action(MAINTAINERS),
    "maintenance:update-job": settings_page(),
    "maintenance:restart-services": settings_page(),
    "maintenance:restart-service": action(MAINTAINERS),
    "maintenance:user-add": CONFIG_ONLY,
    "maintenance:user-edit": CONFIG_ONLY,
    "maintenance:user-remove": CONFIG_ONLY,
    "maintenance:firewall-script": settings_page(),
    "maintenance:firewall-lockdown": settings_page(),
    # the lock-out guard's page for a held lockdown; its POST keeps the lockdown (a change of
    # it: config only)
    "maintenance:firewall-lockdown-pending": settings_page(),
    # View Configuration
    "view:appliance": read(),
    "view:network": read(),
    "view:layer4": read(),
    "view:layer4-rebuild": action(MAINTAINERS),  # re-applies the saved configuration
    # Reports
    "reports:layer4-status": read(),
    "reports:layer4-traffic": read(),
    "reports:layer4-connections": read(),
    "reports:graphs": read(),
    "reports:graphs-data": read(),
    # Logs
    "logs:layer4": read(),
    "logs:health-checks": read(),
    "logs:user": read(),
    "logs:system": read(),
    # Support
    "support:download": read(MAINTAINERS),  # the support archive: a maintenance action
    "support:contact": read(),
    "support:links": read(),
    "support:documentation": read(),
    "support:rest-api": read(),  # the REST API's browsable OpenAPI document
}

# The REST API (/api/v1/, api.rest): each URL name and method mapped to the WebUI URL whose
# rule applies, so an API key has exactly its user's role's rights. GET uses that URL's GET
# rule; every other method its POST rule. api.rest checks it in its authentication, so no
# operation can forget it; a method not listed is refused.
API = {
    "api-v1:apply-state": {"GET": "overview:apply-status"},
    "api-v1:virtual-services": {"GET": "cluster:virtual-services",
                                "POST": "cluster:virtual-service-add"},
    "api-v1:virtual-service": {"GET": "cluster:virtual-services",
                               "PATCH": "cluster:virtual-service-edit",
                               "DELETE": "cluster:virtual-service-delete"},
    "api-v1:service-real-servers": {"GET": "cluster:real-servers",
                                    "POST": "cluster:real-server-add"},
    "api-v1:real-servers": {"GET": "cluster:real-servers"},
    "api-v1:real-server": {"GET": "cluster:real-servers", "PATCH": "cluster:real-server-edit",
                           "DELETE": "cluster:real-server-delete"},
    "api-v1:real-server-state": {"POST": "overview:set-state"},  # Drain, Halt, Online
    "api-v1:floating-ips": {"GET": "cluster:floating-ips", "POST": "cluster:floating-ips"},
    "api-v1:floating-ip": {"DELETE": "cluster:floating-ip-remove"},
    "api-v1:health-check-scripts": {"GET": "cluster:health-check-scripts",
                                    "POST": "cluster:health-check-add"},
    "api-v1:health-check-script": {"GET": "cluster:health-check-scripts",
                                   "PATCH": "cluster:health-check-edit",
                                   "DELETE": "cluster:health-check-delete"},
    "api-v1:hostname-dns": {"GET": "local:hostname-dns", "PATCH": "local:hostname-dns"},
    "api-v1:interfaces": {"GET": "local:interfaces", "PATCH": "local:interfaces"},
    "api-v1:routes": {"GET": "local:routing"},
    # a download is Backup & Restore's maintainers' button; a restore its config-only one
    "api-v1:backup": {"GET": "maintenance:backup-restore"},
    "api-v1:backup-restore": {"POST": "maintenance:backup-restore"},
    "api-v1:updates": {"GET": "maintenance:software-update"},
    "api-v1:update-jobs": {"GET": "maintenance:update-job"},
    "api-v1:update-job": {"GET": "maintenance:update-job"},
    "api-v1:update-check": {"POST": "maintenance:update-check"},
    "api-v1:update-install": {"POST": "maintenance:update-online"},
    "api-v1:services": {"GET": "maintenance:restart-services"},
    "api-v1:service-restart": {"POST": "maintenance:restart-service"},
    # many calls as one change: each is checked by its own rule too; a report key has none
    "api-v1:batch": {"POST": "overview:set-state"},
}

# Views without a login (django.contrib.auth.decorators.login_not_required): not checked here.
OPEN = frozenset({
    "login",
    # the REST API: API keys (api.keys), each URL checked against API above; its OpenAPI
    # document takes a key or a WebUI session; its root answers 404
    *API, "api-v1:openapi-json", "api-v1:api-root",
    # API v2 (api.v2): Basic + API key of the same user; each lbcli call is checked as the
    # WebUI URL whose rule applies (api.lbcli.ACCESS) through allows() above
    "api-v2",
    "metrics",  # its own bearer token (Local Configuration › Graphing)
    "cluster:ha-peer-pair", "cluster:ha-peer-replicate", "cluster:ha-peer-actions",
    "cluster:ha-peer-status", "cluster:ha-peer-break",  # the pairing secret
})

UNKNOWN = Rule(get=CONFIGURERS, post=CONFIGURERS)  # a URL the table does not name


def role_of(user):
    """The user's role: `loadbalancer` is always `config`; a user without a stored role (made
    outside the WebUI's Users page) reads only."""
    if not getattr(user, "is_authenticated", False):
        return None
    if user.get_username() == settings.APPLIANCE_USER:
        return CONFIG
    role = UserRole.objects.filter(user_id=user.pk).values_list("role", flat=True).first()
    return role if role in ROLE_WORDS else REPORT


def roles_for(url_name, method, data=None):
    """The roles allowed `method` on the URL named `url_name` ("namespace:name"); for a POST
    with `data` (its fields), the buttons it carries count."""
    rule = PERMISSIONS.get(url_name, UNKNOWN)
    if method in ("GET", "HEAD", "OPTIONS"):
        return rule.get
    pressed = [roles for button, roles in rule.buttons.items() if data and button in data]
    if not pressed:
        return rule.post
    return frozenset.intersection(*pressed)


def allows(role, url_name, method, data=None):
    return role in roles_for(url_name, method, data)


def refusal(role, url_name, method):
    """Why the request is refused, in words."""
    verb = "open" if method in ("GET", "HEAD", "OPTIONS") else "do"
    needed = " or ".join(sorted(roles_for(url_name, method)))
    return (f"Your role, {ROLE_WORDS.get(role, role)}, may not {verb} this: it needs the "
            f"{needed} role. Ask a user with the config role (Maintenance › Passwords).")


def api_allows(role, api_name, method):
    """Whether `role` may use `method` on the REST API's URL named `api_name` (API)."""
    webui = API.get(api_name, {}).get("GET" if method == "HEAD" else method)
    return webui is not None and allows(role, webui, "GET" if method in ("GET", "HEAD")
                                        else "POST")


def api_refusal(role, api_name, method):
    """Why a key may not do this, in words."""
    webui = API.get(api_name, {}).get("GET" if method == "HEAD" else method)
    if webui is None:
        return f"This API URL does not take {method}."
    needed = " or ".join(sorted(roles_for(webui, "GET" if method in ("GET", "HEAD")
                                          else "POST")))
    return (f"This API key's role, {ROLE_WORDS.get(role, role)}, may not do this: it needs "
            f"the {needed} role. Use a key of a user with that role (Local Configuration "
            "› API Keys).")
