from django.contrib import messages
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from maintenance import online
from maintenance.models import OnlineUpdate

from . import services
from .forms import OnlineUpdateForm


def not_built(request, section, page):
    return render(request, "appliance/not_built.html", {
        "page_title": page.title, "section": section, "page": page,
    })


def setup_wizard(request):
    return render(request, "appliance/setup_wizard.html", {"page_title": "Setup Wizard"})


@require_POST
def setup_wizard_dismiss(request):
    services.do_dismiss_setup_wizard(request.user)
    if request.htmx:
        return render(request, "appliance/setup_wizard_dismissed.html")
    return redirect("overview:index")


def advanced_configuration(request):
    """Local Configuration > Physical – Advanced Configuration: the online update check.
    Saving with the check on asks the update server at once, so the answer shows now."""
    form = OnlineUpdateForm(request.POST or None, instance=OnlineUpdate.load())
    if request.method == "POST" and form.is_valid():
        saved = form.save()
        state = "on" if saved.enabled else "off"
        services.record_change(request.user, f"set the online update check {state} "
                                             f"({saved.server_url or 'no server'})")
        checked = online.check(saved)
        if saved.enabled and checked.check_error:
            messages.error(request, f"Saved, but the update server did not answer: "
                                    f"{checked.check_error}")
        else:
            messages.success(request, "Advanced configuration saved.")
        return redirect("local:advanced")
    return render(request, "appliance/advanced.html", {
        "page_title": "Physical – Advanced Configuration", "form": form,
        "online": OnlineUpdate.load()})
