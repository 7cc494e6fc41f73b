import os

from django.conf import settings
from django.core.wsgi import get_wsgi_application
from django.http.request import split_domain_port

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "appliance.settings")

application = get_wsgi_application()


def redirect_to_https(environ, start_response):
    """The plain-HTTP port (9080, on when Local Configuration › Security says so) only does
    this.

    It never serves a page or reads a cookie: the browser is sent to the HTTPS port.
    """
    domain, _port = split_domain_port(environ.get("HTTP_HOST", ""))
    domain = domain or environ.get("SERVER_NAME", "localhost")
    path = environ.get("PATH_INFO", "/")
    query = environ.get("QUERY_STRING", "")
    location = f"https://{domain}:{settings.LBADMIN_HTTPS_PORT}{path}"
    if query:
        location += f"?{query}"
    start_response("301 Moved Permanently", [("Location", location), ("Content-Length", "0")])
    return [b""]
