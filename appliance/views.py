from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from . import services


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
