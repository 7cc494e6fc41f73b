"""Backup & Restore: the whole configuration as XML, optionally encrypted with a passphrase.

A restore is parsed without DTDs or entities (defusedxml), checked element by element against
the same validators as the forms, refused whole with a reason in words if anything is wrong,
and otherwise applied in one transaction, followed by a data-plane and a network apply. Ids are
kept, so every (service, server) pair keeps its connection mark: the same ruleset comes back.
"""

import base64
import datetime
import os
import xml.etree.ElementTree as ET  # noqa: S405 - writing only; parsing goes through defusedxml

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt
from defusedxml import DefusedXmlException
from defusedxml.ElementTree import ParseError, fromstring
from django import forms as django_forms
from django.core.exceptions import ValidationError
from django.db import transaction

from clusters.models import ConfigGeneration, FloatingIP, RealServer, VirtualService
from clusters.tasks import apply_dataplane
from core.audit import record_change
from core.version import __version__
from healthchecks.models import HealthCheckScript
from network.forms import HostnameDnsForm, parse_host_cidr
from network.models import NetworkConfiguration
from network.tasks import apply_network_from_database

from .forms import OnlineUpdateForm
from .models import OnlineUpdate

SCHEMA = "2"
MAX_BYTES = 10 * 1024 * 1024
ENCRYPTED_MAGIC = b"LBADMIN-ENCRYPTED-BACKUP 1\n"

SERVICE_FIELDS = ("id", "label", "vip", "ports", "protocol", "forwarding", "scheduler",
                  "persistent", "persistence_timeout", "check_type", "check_script",
                  "check_port", "check_request", "check_host", "check_expect",
                  "check_interval", "check_timeout", "failure_count", "on_failure",
                  "fallback_ip", "fallback_port", "fallback_masq")
SERVER_FIELDS = ("id", "label", "ip", "port", "weight", "min_connections", "max_connections",
                 "state")
BOOLEANS = {"persistent", "fallback_masq"}
INTEGERS = {"id", "check_script", "persistence_timeout", "check_port", "check_interval",
            "check_timeout",
            "failure_count", "fallback_port", "port", "weight", "min_connections",
            "max_connections"}


class BackupError(Exception):
    """The file cannot be restored; the message says why, in words."""


def _schema_1_to_2(root):
    """Schema 2 added <online-update>. A schema-1 file has none: restoring it keeps this
    appliance's own online update settings."""
    root.set("schema", "2")


# Each older schema this appliance reads, and how it becomes the next one.
UPGRADES = {"1": _schema_1_to_2}


def _text(value):
    return "" if value is None else str(value).lower() if isinstance(value, bool) else str(value)


def export_xml():
    root = ET.Element("lbadmin-backup", schema=SCHEMA, version=__version__,
                      created=datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"))
    network = NetworkConfiguration.load()
    net = ET.SubElement(root, "network", hostname=network.hostname, gateway4=network.gateway4,
                        gateway6=network.gateway6)
    for name, settings in sorted(network.interfaces.items()):
        interface = ET.SubElement(net, "interface", name=name, mtu=_text(settings.get("mtu")))
        for cidr in settings.get("addresses", []):
            ET.SubElement(interface, "address").text = cidr
    for parent, vid in network.vlans:
        ET.SubElement(net, "vlan", parent=parent, id=str(vid))
    for route in network.routes:
        ET.SubElement(net, "route", destination=route["destination"], gateway=route["gateway"])
    for server in network.dns:
        ET.SubElement(net, "dns").text = server
    online = OnlineUpdate.load()
    ET.SubElement(root, "online-update", {"enabled": _text(online.enabled),
                                          "server-url": online.server_url})
    for floating in FloatingIP.objects.all():
        ET.SubElement(root, "floating-ip", address=floating.address)
    for script in HealthCheckScript.objects.all():
        element = ET.SubElement(root, "health-check-script", id=str(script.id),
                                name=script.name, type=script.type, template=script.template)
        element.text = script.script
    for service in VirtualService.objects.prefetch_related("real_servers"):
        attributes = {f: _text(getattr(service, "check_script_id" if f == "check_script" else f))
                      for f in SERVICE_FIELDS}
        element = ET.SubElement(root, "virtual-service", attributes)
        for server in service.real_servers.all():
            ET.SubElement(element, "real-server",
                          {f: _text(getattr(server, f)) for f in SERVER_FIELDS})
    ET.indent(root)
    return b'<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="utf-8")


def _key(passphrase, salt):
    kdf = Scrypt(salt=salt, length=32, n=2**15, r=8, p=1)
    return base64.urlsafe_b64encode(kdf.derive(passphrase.encode()))


def encrypt(data, passphrase):
    salt = os.urandom(16)
    return ENCRYPTED_MAGIC + base64.b64encode(salt) + b"\n" + \
        Fernet(_key(passphrase, salt)).encrypt(data)


def decrypt(data, passphrase):
    if not data.startswith(ENCRYPTED_MAGIC):
        return data
    if not passphrase:
        raise BackupError("This backup is encrypted: enter its passphrase.")
    try:
        salt_line, token = data[len(ENCRYPTED_MAGIC):].split(b"\n", 1)
        return Fernet(_key(passphrase, base64.b64decode(salt_line))).decrypt(token)
    except (InvalidToken, ValueError):
        raise BackupError("Wrong passphrase, or the encrypted file is damaged.") from None


def _attributes(element, allowed, where):
    unknown = set(element.attrib) - set(allowed)
    if unknown:
        raise BackupError(f"{where}: unknown attribute(s) {', '.join(sorted(unknown))}.")
    values = {}
    for name in allowed:
        raw = element.attrib.get(name, "")
        if name in BOOLEANS:
            values[name] = raw == "true"
        elif name in INTEGERS:
            try:
                values[name] = int(raw) if raw != "" else None
            except ValueError:
                raise BackupError(f"{where}: {name}=“{raw}” is not a whole number.") from None
        else:
            values[name] = raw
    return values


def _children(element, allowed, where):
    for child in element:
        if child.tag not in allowed:
            raise BackupError(f"{where}: unknown element <{child.tag}>.")
    return element


def parse(data):
    """Bytes of a backup -> plain data, or BackupError; nothing is changed here."""
    if len(data) > MAX_BYTES:
        raise BackupError(f"The file is larger than {MAX_BYTES // (1024 * 1024)} MiB.")
    try:
        root = fromstring(data, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException as error:
        raise BackupError(f"Refused: the file declares a DTD or entities ({type(error).__name__})"
                          "; a backup never does.") from None
    except ParseError as error:
        raise BackupError(f"Not a readable XML file: {error}.") from None
    if root.tag != "lbadmin-backup":
        raise BackupError(f"Not an lbadmin backup (the root element is <{root.tag}>).")
    schema = converted_from = root.attrib.get("schema")
    while schema in UPGRADES:
        UPGRADES[schema](root)
        schema = root.attrib["schema"]
    if schema != SCHEMA:
        newer = (schema or "").isdigit() and int(schema) > int(SCHEMA)
        raise BackupError(f"This backup has schema version {schema!r}"
                          f"{', made by a newer lbadmin' if newer else ''}; this appliance "
                          f"reads versions {', '.join([*UPGRADES, SCHEMA])}.")
    _children(root, {"network", "online-update", "floating-ip", "health-check-script",
                     "virtual-service"}, "the backup")
    result = {"network": None, "online_update": None, "floating_ips": [], "scripts": [],
              "services": [], "converted_from": converted_from if converted_from != SCHEMA
              else None}
    for element in root:
        where = f"<{element.tag}>"
        if element.tag == "online-update":
            _children(element, set(), where)
            values = _attributes(element, ("enabled", "server-url"), where)
            result["online_update"] = {"enabled": values["enabled"] == "true",
                                       "server_url": values["server-url"]}
        elif element.tag == "network":
            _children(element, {"interface", "vlan", "route", "dns"}, where)
            values = _attributes(element, ("hostname", "gateway4", "gateway6"), where)
            interfaces = {}
            for child in element.findall("interface"):
                item = _attributes(child, ("name", "mtu"), "<interface>")
                _children(child, {"address"}, "<interface>")
                interfaces[item["name"]] = {
                    "addresses": [(a.text or "").strip() for a in child.findall("address")],
                    "mtu": int(item["mtu"]) if item["mtu"] else None}
            values["interfaces"] = interfaces
            values["vlans"] = [[v["parent"], int(v["id"])] for v in (
                _attributes(c, ("parent", "id"), "<vlan>") for c in element.findall("vlan"))]
            values["routes"] = [_attributes(c, ("destination", "gateway"), "<route>")
                                for c in element.findall("route")]
            values["dns"] = [(c.text or "").strip() for c in element.findall("dns")]
            result["network"] = values
        elif element.tag == "floating-ip":
            result["floating_ips"].append(_attributes(element, ("address",), where)["address"])
        elif element.tag == "health-check-script":
            _children(element, set(), where)
            values = _attributes(element, ("id", "name", "type", "template"), where)
            values["script"] = element.text or ""
            result["scripts"].append(values)
        else:
            _children(element, {"real-server"}, where)
            values = _attributes(element, SERVICE_FIELDS, where)
            values["servers"] = [_attributes(c, SERVER_FIELDS, "<real-server>")
                                 for c in element.findall("real-server")]
            result["services"].append(values)
    return result


def _check(instance, where):
    try:
        instance.full_clean()
    except ValidationError as error:
        problems = "; ".join(f"{field}: {' '.join(messages)}"
                             for field, messages in error.message_dict.items())
        raise BackupError(f"{where}: {problems}") from None


def _check_network(network):
    if not HostnameDnsForm({"hostname": network["hostname"]}).is_valid():
        raise BackupError(f"<network>: hostname “{network['hostname']}” is not valid.")
    for name, settings in network["interfaces"].items():
        for cidr in settings["addresses"]:
            try:
                parse_host_cidr(cidr)
            except ValidationError as error:
                raise BackupError(f"<interface name=“{name}”>: {error.messages[0]}") from None
        if settings["mtu"] is not None and not 68 <= settings["mtu"] <= 9216:
            raise BackupError(f"<interface name=“{name}”>: the MTU must be 68 to 9216.")
    for parent, vid in network["vlans"]:
        if not 1 <= vid <= 4094:
            raise BackupError(f"<vlan parent=“{parent}”>: a VLAN ID is 1 to 4094.")
    address = django_forms.GenericIPAddressField()
    for server in network["dns"] + [r["gateway"] for r in network["routes"]]:
        try:
            address.clean(server)
        except ValidationError:
            raise BackupError(f"<network>: “{server}” is not an IP address.") from None


@transaction.atomic
def restore(parsed, user):
    """Replace the configuration with the backup's, all or nothing."""
    VirtualService.objects.all().delete()
    FloatingIP.objects.all().delete()
    HealthCheckScript.objects.all().delete()
    for values in parsed["scripts"]:
        script = HealthCheckScript(**values)
        _check(script, f"health check “{values['name']}”")
        script.save()
    for address in parsed["floating_ips"]:
        floating = FloatingIP(address=address)
        _check(floating, f"floating IP “{address}”")
        floating.save()
    for values in parsed["services"]:
        servers = values.pop("servers")
        values["check_script_id"] = values.pop("check_script")
        service = VirtualService(**values)
        _check(service, f"virtual service “{values['label']}”")
        service.save()
        for server_values in servers:
            server = RealServer(service=service, **server_values)
            _check(server, f"real server “{server_values['label']}” of “{values['label']}”")
            server.save()
    if parsed["online_update"]:
        _restore_online_update(parsed["online_update"])
    if parsed["network"]:
        _check_network(parsed["network"])
        network = NetworkConfiguration.load()
        for key, value in parsed["network"].items():
            setattr(network, key, value)
        network.save()
    ConfigGeneration.bump()
    record_change(user, f"restored a backup ({len(parsed['services'])} virtual services)")
    transaction.on_commit(_apply_everything, robust=True)


def _restore_online_update(values):
    form = OnlineUpdateForm({"enabled": values["enabled"] or "",
                             "server_url": values["server_url"]}, instance=OnlineUpdate.load())
    if not form.is_valid():
        problems = "; ".join(" ".join(m) for m in form.errors.values())
        raise BackupError(f"<online-update>: {problems}")
    form.save()


def _apply_everything():
    apply_network_from_database.apply_async()
    apply_dataplane.apply_async(kwargs={"full": True})
