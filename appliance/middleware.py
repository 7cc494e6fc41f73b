"""Response rules Django 5.2 has no setting for."""

import logging
import time
import urllib.parse

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.http import HttpResponse, HttpResponseBadRequest
from django.shortcuts import redirect, render, resolve_url
from django.urls import Resolver404, resolve
from django.utils.http import url_has_allowed_host_and_scheme

from core import roles
from core.audit import record_audit
from maintenance import webui
from maintenance.models import SecuritySettings, WebUISettings

from . import login

host_log = logging.getLogger("django.security.DisallowedHost")
refused_log = logging.getLogger("lbadmin.roles")


def allowed_hosts(get_response):
    """Django's ALLOWED_HOSTS is "*" because the appliance's own addresses are configuration,
    not settings: this refuses (400) a request whose Host header names anything else
    (maintenance.webui.own_host_names), unless the administrator allowed the name in
    Physical – Advanced Configuration or LBADMIN_ALLOWED_HOSTS ("*" for any).

    The allowed names are read (one query) only for a Host the appliance's own names refuse:
    a change on the page holds at once in every process, and requests using the appliance's
    own names pay nothing for it."""

    def middleware(request):
        domain = webui.request_domain(request)
        if not webui.allows(domain, webui.own_host_names(request)) and \
                not webui.allows(domain, WebUISettings.stored_names()):
            shown = request.META.get("HTTP_HOST", "")[:100]
            host_log.warning("Refused Host header %r", shown)
            return HttpResponseBadRequest(
                f"This appliance does not answer to the name \u201c{shown}\u201d: use one of its "
                "addresses or its hostname, or allow the name in Local Configuration \u203a "
                "Physical \u2013 Advanced Configuration \u203a Allowed Host Names (or "
                "LBADMIN_ALLOWED_HOSTS).\n",
                content_type="text/plain; charset=utf-8")
        return get_response(request)

    return middleware


def no_store(get_response):
    """Pages and downloads (backups, support files) are never kept by the browser or a proxy:
    Cache-Control: no-store on every response Django makes (static files are WhiteNoise's,
    before this)."""

    def middleware(request):
        response = get_response(request)
        response["Cache-Control"] = "no-store"
        return response

    return middleware


def _is_password_page(request):
    try:
        return resolve(request.path_info).view_name == "maintenance:passwords"
    except Resolver404:
        return False


def password_check_throttle(get_response):
    """Maintenance › Passwords' current-password check is throttled like the login
    (appliance.login): per address and per user; the view reports a wrong current password
    with Django's user_login_failed signal."""

    def middleware(request):
        if request.method != "POST" or not request.user.is_authenticated or \
                not _is_password_page(request):
            return get_response(request)
        refused = login.begin_attempt(request, request.user.get_username(), per_user=True,
                                      what="wrong current passwords")
        if refused:
            record_audit(request.user, "password change refused (too many wrong current "
                                       f"passwords) from {login.client_address(request)}")
            messages.error(request, f"Not changed: {refused}")
            return redirect(request.path)
        try:
            return get_response(request)
        finally:
            login.end_attempt(request)

    return middleware


def content_security_policy(get_response):
    """Every response forbids inline script and style, framing and foreign origins."""

    def middleware(request):
        response = get_response(request)
        response.setdefault("Content-Security-Policy", settings.CONTENT_SECURITY_POLICY)
        return response

    return middleware


def strict_transport_security(get_response):
    """HSTS as Local Configuration › Security sets it, on HTTPS responses (Django's
    SECURE_HSTS_SECONDS is fixed at start, so it is 0 and this sets the header). Never on
    plain HTTP, where browsers ignore it."""

    def middleware(request):
        response = get_response(request)
        if request.is_secure():
            stored = SecuritySettings.for_request(request)
            if stored.hsts:
                response.setdefault("Strict-Transport-Security",
                                    f"max-age={stored.hsts_max_age}")
        return response

    return middleware


# Elements that refresh themselves (htmx polling): their requests are not the user's activity.
POLLING_ELEMENTS = {"layer4", "service-status", "apply-status", "system-log",
                    "date-time-status"}


def is_polling(request):
    return bool(getattr(request, "htmx", False)) and request.method == "GET" and \
        request.htmx.trigger in POLLING_ELEMENTS


def idle_timeout(get_response):
    """Log out after Local Configuration › Security's Session Timeout without the user doing
    anything (read per request: Django's SESSION_COOKIE_AGE is fixed at start).

    The pages that refresh themselves do not count as activity, so a System Overview left
    open on an unattended screen still logs out.
    """

    def middleware(request):
        if request.user.is_authenticated:
            now = time.time()
            last = request.session.get("last_activity", now)
            if now - last > SecuritySettings.for_request(request).session_timeout * 60:
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


class RoleRequired:
    """Every named URL is checked against the roles table (core.roles) before its view runs,
    so no view, htmx partial or download can forget it. In process_view, after the session, CSRF
    and htmx middleware: the URL is resolved and the CSRF check has been made. Views without a
    login (login_not_required: the login page, /metrics, the HA peer's calls) are not the
    table's. A refusal says so in words: a 403 page in the WebUI's layout, or for htmx the
    words and a reload that shows them."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_view(self, request, view_func, view_args, view_kwargs):
        if not getattr(view_func, "login_required", True) or not request.user.is_authenticated:
            return None
        name = request.resolver_match.view_name
        role = roles.role_of(request.user)
        request.webui_role = role  # the context processor reads it (no second query)
        method = request.method
        # only a rule that tells buttons apart reads the form (an upload is parsed once anyway)
        data = request.POST if method == "POST" and roles.PERMISSIONS.get(
            name, roles.UNKNOWN).buttons else None
        if roles.allows(role, name, method, data):
            return None
        words = roles.refusal(role, name, method)
        refused_log.warning("Refused %s %s to %s (%s)", method, name,
                            request.user.get_username(), role)
        if getattr(request, "htmx", False):
            messages.error(request, words)
            response = HttpResponse(words, status=403, content_type="text/plain; charset=utf-8")
            response["HX-Refresh"] = "true"
            return response
        return render(request, "appliance/forbidden.html",
                      {"page_title": "Not allowed", "refusal": words}, status=403)
