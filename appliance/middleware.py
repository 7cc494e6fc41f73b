"""A response rule Django 5.2 has no setting for."""

from django.conf import settings


def content_security_policy(get_response):
    """Every response forbids inline script and style, framing and foreign origins."""

    def middleware(request):
        response = get_response(request)
        response.setdefault("Content-Security-Policy", settings.CONTENT_SECURITY_POLICY)
        return response

    return middleware
