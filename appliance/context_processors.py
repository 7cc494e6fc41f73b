from django.utils.functional import SimpleLazyObject

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
