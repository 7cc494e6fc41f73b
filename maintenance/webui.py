"""The host names the WebUI answers to (appliance.middleware.allowed_hosts refuses any other
Host header with 400)."""

from django.conf import settings
from django.core.exceptions import DisallowedHost
from django.http.request import split_domain_port, validate_host

from network.models import NetworkConfiguration
from network.views import browser_address

LOCAL_NAMES = ("localhost", "127.0.0.1", "::1")


def own_host_names(request):
    """The names the WebUI answers to whatever Physical – Advanced Configuration allows:
    localhost, the address the connection arrived on, the appliance's configured interface
    addresses and hostname, and LBADMIN_ALLOWED_HOSTS ("*" = any name); Django's test
    client's "testserver" too, which Django adds to ALLOWED_HOSTS in tests."""
    names = [*LOCAL_NAMES, *settings.LBADMIN_ALLOWED_HOSTS,
             *(name for name in settings.ALLOWED_HOSTS if name != "*")]
    if arrived := browser_address(request):
        names.append(arrived)
    stored = NetworkConfiguration.objects.filter(pk=1).only("interfaces", "hostname").first()
    if stored is not None:
        names.append(stored.hostname)
        names.extend(cidr.split("/")[0] for interface in stored.interfaces.values()
                     for cidr in interface.get("addresses", []))
    return names


def request_domain(request):
    """The name the browser used (the Host header without port and IPv6 brackets); "" when
    the header is missing or malformed."""
    try:
        domain, _port = split_domain_port(request.get_host())
    except DisallowedHost:
        return ""
    return domain.strip("[]")


def allows(domain, names):
    return bool(domain) and validate_host(domain, [name for name in names if name])
