"""Local Configuration › Security: the WebUI's certificate, plain HTTP on 9080, HSTS and the
session timeout. Actions the page and the tests call.

A new certificate and the HTTP setting take effect through the supervisor (runner/supervisor.py
"reload"): it sends gunicorn's master SIGHUP — new workers read the new files, the old ones
finish what they serve, the listening socket stays, and the sessions, which live in the
database, stay logged in — and starts or stops the plain-HTTP redirect as the setting says.

In a clustered pair each node pins the other's certificate (ha.peer): a new certificate on one
node would make every call between them fail. So the certificate is refused while this
appliance is in a pair, and the page says how to change it (break the pair, change it, pair
again: pairing pins the new one).
"""

import ipaddress

from django.conf import settings
from django.db import transaction

from core.audit import record_audit
from core.pairing import address_owner
from core.workers import WorkerUnavailable, ask_supervisor
from network.models import NetworkConfiguration
from network.services import live_interfaces

from . import certificate

IN_A_PAIR = ("This appliance is in a clustered pair, and its peer pins this certificate: a new "
             "one would cut every call between the two. Break the pair (Cluster Configuration "
             "› High-Availability Configuration), change the certificate on each appliance, "
             "then pair them again, which pins the new certificates.")
NOT_RELOADED = ("The WebUI was not asked to reload: {problem} New connections use the new "
                "certificate; restart the WebUI (Maintenance › Restart Services) to be sure.")


def paired_refusal():
    """Why the certificate cannot change now, or ""."""
    return IN_A_PAIR if address_owner() is not None else ""


def reload_webui(user):
    """Ask the supervisor to reload the WebUI's certificate and follow the HTTP setting;
    "" or why it could not be asked."""
    try:
        ask_supervisor({"reload": "web", "by": user.get_username()})
    except WorkerUnavailable as problem:
        return str(problem)
    return ""


def appliance_names(arrival_address=""):
    """(hostname, addresses) a generated certificate names, and a note ("" or why the live
    addresses are missing): the saved hostname, the appliance's own interface addresses (live,
    from the dataplane worker; else as configured) without the VIPs and floating IPs it
    carries for the services, and the address the browser arrived on."""
    stored = NetworkConfiguration.load()
    listing, error = live_interfaces()
    cidrs = [entry["cidr"] for interface in listing or [] for entry in interface["marked"]
             if not entry["role"]]
    cidrs += [cidr for interface in stored.interfaces.values()
              for cidr in interface.get("addresses", [])]
    addresses = []
    for text in [cidr.split("/")[0] for cidr in cidrs] + ([arrival_address] if arrival_address
                                                          else []):
        try:
            address = ipaddress.ip_address(text.split("%")[0])
        except ValueError:
            continue
        if not (address.is_loopback or address.is_link_local) and str(address) not in addresses:
            addresses.append(str(address))
    note = "" if listing is not None else (
        f"The live addresses could not be read ({error}); the configured ones were used.")
    return stored.hostname, addresses, note


@transaction.atomic
def do_install_certificate(cert_pem, key_pem, user, how="uploaded"):
    """Check and put a certificate and key in place (CertificateRefused says why not), record
    it; the caller asks for the reload (reload_webui) once this returned."""
    if refusal := paired_refusal():
        raise certificate.CertificateRefused(refusal)
    checked = certificate.install(settings.DATA_DIR, cert_pem, key_pem)
    leaf = checked.chain[0]
    record_audit(user, f"{how} the WebUI certificate {leaf.subject.rfc4514_string()} "
                        f"(sha-256 {certificate.fingerprint(leaf)}, valid until "
                        f"{leaf.not_valid_after_utc:%Y-%m-%d})")
    return checked


def do_generate_certificate(user, arrival_address=""):
    """A new self-signed certificate for the appliance's names; (Checked, note)."""
    hostname, addresses, note = appliance_names(arrival_address)
    checked = do_install_certificate(*certificate.self_signed(hostname, addresses), user,
                                     how="generated a self-signed")
    return checked, note


@transaction.atomic
def do_save_security_settings(form, user):
    """Save the validated SecuritySettingsForm; returns (settings, whether plain HTTP
    changed)."""
    http_changed = "http_redirect" in form.changed_data
    saved = form.save()
    record_audit(user, f"set WebUI security: HTTP redirect "
                        f"{'on' if saved.http_redirect else 'off'}, HSTS "
                        f"{f'max-age {saved.hsts_max_age}' if saved.hsts else 'off'}, session "
                        f"timeout {saved.session_timeout} min")
    return saved, http_changed


def http_state(state):
    """What the supervisor says of the plain-HTTP redirect: {"running", "port"} or None."""
    return (state or {}).get("http")


def last_reload(state):
    """The supervisor's last reload (or restart) of the WebUI: {"at", "by", "result"}."""
    return ((state or {}).get("restarts") or {}).get("web")

