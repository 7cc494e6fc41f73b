"""Response rules Django 5.2 has no setting for."""

import time

from django.conf import settings
from django.contrib.auth import logout
from django.http import HttpResponse
from django.shortcuts import redirect


def content_security_policy(get_response):
    """Every response forbids inline script and style, framing and foreign origins."""

    def middleware(request):
        response = get_response(request)
        response.setdefault("Content-Security-Policy", settings.CONTENT_SECURITY_POLICY)
        return response

    return middleware


# Elements that refresh themselves (htmx polling): their requests are not the user's activity.
POLLING_ELEMENTS = {"layer4", "service-status", "apply-status"}


def is_polling(request):
    return bool(getattr(request, "htmx", False)) and request.method == "GET" and \
        request.htmx.trigger in POLLING_ELEMENTS


def idle_timeout(get_response):
    """Log out after LBADMIN_SESSION_TIMEOUT seconds without the user doing anything.

    The pages that refresh themselves do not count as activity, so a System Overview left
    open on an unattended screen still logs out.
    """

    def middleware(request):
        if request.user.is_authenticated:
            now = time.time()
            last = request.session.get("last_activity", now)
            if now - last > settings.SESSION_IDLE_TIMEOUT:
                logout(request)
                if getattr(request, "htmx", False):
                    response = HttpResponse(status=204)
                    response["HX-Redirect"] = settings.LOGIN_URL_PATH
                    return response
                return redirect(f"{settings.LOGIN_URL_PATH}?next={request.path}")
            if not is_polling(request):
                request.session["last_activity"] = now
        return get_response(request)

    return middleware
