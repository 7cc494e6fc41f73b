from django.utils.functional import SimpleLazyObject

from core import roles
from core.runtime import supervisor_state
from core.version import __version__
from maintenance.online import offered
from maintenance.restarts import restart_needed
from network.models import NetworkConfiguration

from . import navigation, services


def appliance(request):
    """What every page shows: the menu, the version, the hostname, the Setup Wizard question,
    the banners. Lazy: the partials that htmx polls every second never read them, so they
    cost no query there."""
    if not request.user.is_authenticated:
        return {"lbadmin_version": __version__}
    return {
        "menu": SimpleLazyObject(lambda: navigation.menu_for(request)),
        "lbadmin_version": __version__,
        "lbadmin_hostname": SimpleLazyObject(saved_hostname),
        "ask_setup_wizard": SimpleLazyObject(
            lambda: services.should_ask_setup_wizard(request.user)),
        "restart_needed": SimpleLazyObject(lambda: restart_needed(supervisor_state())),
        "update_offered": SimpleLazyObject(offered),
    }


def saved_hostname():
    """The hostname saved in Local Configuration › Hostname & DNS (what lbadmin writes to
    the hostname file), not the host's: the default before anything is saved."""
    saved = NetworkConfiguration.objects.filter(pk=1).values_list("hostname", flat=True).first()
    return saved or NetworkConfiguration._meta.get_field("hostname").get_default()


# What the templates ask (`{% if can.set_state %}`), each answered by the roles table for the
# URL that does it, so hiding and refusing cannot disagree: (URL name, method, buttons).
CAN = {
    "configure": ("cluster:virtual-service-add", "POST", None),
    "set_state": ("overview:set-state", "POST", None),
    "restart": ("maintenance:restart-service", "POST", None),
    "take_backup": ("maintenance:backup-restore", "POST", {"download": "1"}),
    "restore": ("maintenance:backup-restore", "POST", {"restore": "1"}),
    "roll_back": ("maintenance:roll-back", "POST", None),
    "update": ("maintenance:software-update", "POST", None),
    "rebuild": ("view:layer4-rebuild", "POST", None),
    "manage_users": ("maintenance:user-add", "POST", None),
    "read_maintenance": ("maintenance:software-update", "GET", None),
}


def webui_role(request):
    """The signed-in user's role: the one the middleware found, else looked up."""
    if not hasattr(request, "webui_role"):
        request.webui_role = roles.role_of(request.user)
    return request.webui_role


def roles_context(request):
    """`role` (config, maint or report) and `can` (CAN's flags) for the templates: what a
    role may not do is not offered (the server's check, appliance.middleware.RoleRequired, is
    what counts)."""
    if not request.user.is_authenticated:
        return {}
    role = webui_role(request)
    return {"role": role, "role_words": roles.ROLE_WORDS.get(role, role),
            "can": {flag: roles.allows(role, *asked) for flag, asked in CAN.items()}}
