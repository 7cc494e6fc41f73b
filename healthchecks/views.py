from django.contrib import messages
from django.db.models import ProtectedError
from django.shortcuts import get_object_or_404, redirect, render

from . import services
from .forms import HealthCheckScriptForm
from .models import HealthCheckScript, HealthEvent
from .templates_library import TEMPLATES

PAGE = "Health Check Scripts"


def script_list(request):
    return render(request, "healthchecks/scripts.html", {
        "page_title": PAGE,
        "scripts": HealthCheckScript.objects.prefetch_related("services"),
    })


def script_edit(request, pk=None):
    script = get_object_or_404(HealthCheckScript, pk=pk) if pk else HealthCheckScript()
    form = HealthCheckScriptForm(request.POST or None, instance=script)
    if request.method == "POST" and form.is_valid():
        services.do_save_script(form.instance, request.user)
        messages.success(request, f"Health check {form.instance.name} saved.")
        return redirect("cluster:health-check-scripts")
    return render(request, "healthchecks/script_form.html", {
        "page_title": PAGE, "form": form,
        "heading": f"Modify health check {script.name}" if pk else "Add New Health Check",
    })


def template_text(request):
    """The script textarea filled from the chosen template (htmx swaps it in)."""
    form = HealthCheckScriptForm(initial={"script": TEMPLATES.get(request.GET.get("template"),
                                                                  "")})
    return render(request, "healthchecks/script_field.html", {"field": form["script"]})


def script_delete(request, pk):
    script = get_object_or_404(HealthCheckScript, pk=pk)
    users = list(script.services.values_list("label", flat=True))
    if request.method == "POST":
        try:
            services.do_delete_script(script, request.user)
        except ProtectedError:
            pass  # users listed below
        else:
            messages.success(request, f"Health check {script.name} deleted.")
            return redirect("cluster:health-check-scripts")
    return render(request, "healthchecks/script_delete.html", {
        "page_title": PAGE, "script": script, "users": users,
    })


def health_log(request):
    return render(request, "healthchecks/log.html", {
        "page_title": "Health Checks", "events": HealthEvent.objects.all()[:500],
    })
