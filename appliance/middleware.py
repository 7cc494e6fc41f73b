"""Response rules Django 5.2 has no setting for."""

import time
import urllib.parse

from django.conf import settings
from django.contrib.auth import logout
from django.http import HttpResponse
from django.shortcuts import redirect, resolve_url
from django.utils.http import url_has_allowed_host_and_scheme


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
                    response["HX-Redirect"] = session_ended_url(request)
                    return response
                return redirect(f"{settings.LOGIN_URL_PATH}?next={request.path}")
            if not is_polling(request):
                request.session["last_activity"] = now
        return get_response(request)

    return middleware


# The login page's query when an htmx request found no session: it then says the session ended.
SESSION_ENDED = ("session", "ended")


def page_shown(request):
    """The path of the page the user has open (htmx's HX-Current-URL), when it is a local
    /lbadmin/ page; else None."""
    current = request.headers.get("HX-Current-URL", "")
    try:
        path = urllib.parse.urlsplit(current).path
    except ValueError:
        return None
    if path.startswith(settings.LOGIN_URL_PATH) or not path.startswith("/lbadmin/") or \
            not url_has_allowed_host_and_scheme(path, allowed_hosts=None):
        return None
    return path


def session_ended_url(request):
    """The login page, saying the session ended, going back to the page the user had open."""
    query = [("next", path)] if (path := page_shown(request)) else []
    return f"{settings.LOGIN_URL_PATH}?{urllib.parse.urlencode([*query, SESSION_ENDED])}"


def htmx_login_redirect(get_response):
    """An htmx request sent to the login page (no session: LoginRequiredMiddleware, the
    session logged out in another tab or expired) must not swap a login page into the
    element that asked: 204 + HX-Redirect makes htmx load the login page as the whole page."""

    def middleware(request):
        response = get_response(request)
        if request.headers.get("HX-Request") == "true" and response.status_code in (301, 302) \
                and urllib.parse.urlsplit(response.get("Location", "")).path == \
                resolve_url(settings.LOGIN_URL):
            redirected = HttpResponse(status=204)
            redirected["HX-Redirect"] = session_ended_url(request)
            return redirected
        return response

    return middleware
