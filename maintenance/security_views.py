"""Local Configuration › Security (the page sits in Local Configuration's menu, as in the
guide; the WebUI's settings live in maintenance beside Allowed Host Names)."""

from django.conf import settings
from django.contrib import messages
from django.shortcuts import redirect, render

from core.runtime import supervisor_state
from network.models import NetworkConfiguration
from network.views import browser_address

from . import certificate, security
from .forms import CertificateUploadForm, SecuritySettingsForm
from .models import SecuritySettings


def _reloaded(request, done, note=""):
    """After a new certificate: the reload asked, and the page says what happened."""
    problem = security.reload_webui(request.user)
    if problem:
        messages.error(request, f"{done} {security.NOT_RELOADED.format(problem=problem)}")
    else:
        messages.success(request, f"{done} The WebUI reloads it now (your session stays "
                                  "logged in); your browser may warn once about a new "
                                  f"certificate.{f' {note}' if note else ''}")
    return redirect("local:security")


def security_page(request):
    upload = CertificateUploadForm(request.POST if "upload" in request.POST else None,
                                   request.FILES if "upload" in request.POST else None)
    access = SecuritySettingsForm(request.POST if "save" in request.POST else None,
                                  instance=SecuritySettings.load())
    if request.method == "POST" and "upload" in request.POST and upload.is_valid():
        try:
            security.do_install_certificate(upload.checked.cert_pem, upload.checked.key_pem,
                                            request.user)
        except certificate.CertificateRefused as refused:
            upload.add_error(refused.field, str(refused))
        else:
            return _reloaded(request, "The uploaded certificate is installed.")
    if request.method == "POST" and "generate" in request.POST:
        try:
            _checked, note = security.do_generate_certificate(request.user,
                                                              browser_address(request))
        except certificate.CertificateRefused as refused:
            messages.error(request, f"No certificate was made: {refused}")
            return redirect("local:security")
        return _reloaded(request, "A new self-signed certificate is installed.", note)
    if request.method == "POST" and "save" in request.POST and access.is_valid():
        saved, http_changed = security.do_save_security_settings(access, request.user)
        if http_changed and (problem := security.reload_webui(request.user)):
            messages.error(request, f"Saved, but port 9080 was not "
                                    f"{'opened' if saved.http_redirect else 'closed'}: "
                                    f"{problem}")
        elif http_changed:
            messages.success(request, f"Security settings saved. Port 9080 is being "
                                      f"{'opened' if saved.http_redirect else 'closed'}.")
        else:
            messages.success(request, "Security settings saved.")
        return redirect("local:security")
    state = supervisor_state()
    return render(request, "maintenance/security.html", {
        "page_title": "Security", "upload": upload, "access": access,
        "current": certificate.describe(settings.DATA_DIR),
        "pair_refusal": security.paired_refusal(),
        "hostname": NetworkConfiguration.load().hostname,
        "http": security.http_state(state), "last_reload": security.last_reload(state),
    })
