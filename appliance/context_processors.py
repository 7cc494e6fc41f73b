import socket

from maintenance.online import offered
from maintenance.restarts import restart_needed

from . import __version__, navigation, services
from .runtime import supervisor_state


def appliance(request):
    """What every page shows: the menu, the version, the hostname, the Setup Wizard question."""
    if not request.user.is_authenticated:
        return {"lbadmin_version": __version__}
    return {
        "menu": navigation.menu_for(request),
        "lbadmin_version": __version__,
        "lbadmin_hostname": socket.gethostname(),
        "ask_setup_wizard": services.should_ask_setup_wizard(request.user),
        "restart_needed": restart_needed(supervisor_state()),
        "update_offered": offered(),
    }
