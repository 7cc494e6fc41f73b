"""Local Configuration › API Keys, and the REST API's browsable document."""

from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from core import roles

from . import keys
from .forms import ApiKeyForm
from .models import ApiKey
from .optional import MISSING
from .optional import api as rest_api

PAGE = "API Keys"


def api_keys(request):
    """Create and revoke keys; a new key is shown once, in the answer to the POST that made
    it (never stored, never put in the session or a message)."""
    form = ApiKeyForm(request.POST or None)
    new_key = None
    if request.method == "POST" and form.is_valid():
        new_key = keys.do_create_key(form.instance, request.user)
        form = ApiKeyForm()
    listed = ApiKey.objects.select_related("user")
    return render(request, "api/api_keys.html", {
        "page_title": PAGE, "form": form, "new_key": new_key,
        "new_key_name": request.POST.get("name", "").strip() if new_key else "",
        "keys": [(key, roles.role_of(key.user)) for key in listed],
    })


@require_POST
def api_key_revoke(request, pk):
    key = get_object_or_404(ApiKey.objects.select_related("user"), pk=pk)
    keys.do_revoke_key(key, request.user)
    messages.success(request, f"API key {key.name} revoked: it is refused from now on.")
    return redirect("local:api-keys")


def rest_api_docs(request):
    """Support › Useful Links › REST API: the OpenAPI document in Swagger UI, served from the
    appliance's own static files (the pinned django-ninja's copy of Swagger UI) with its
    settings as JSON data and ninja's external init script, so the WebUI's CSP (script-src
    'self', no inline script) holds and nothing comes from a CDN."""
    if rest_api is None:
        return render(request, "api/docs.html", {"page_title": "Useful Links",
                                                 "missing": MISSING})
    openapi_url = reverse("api-v1:openapi-json")
    return render(request, "api/docs.html", {
        "page_title": "Useful Links", "openapi_url": openapi_url,
        "swagger_settings": {"url": openapi_url, "layout": "BaseLayout", "deepLinking": True},
    })
