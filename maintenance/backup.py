"""Backup & Restore: the whole configuration as XML, optionally encrypted with a passphrase.

A restore is parsed without DTDs or entities (defusedxml) into plain strings, then built into
the same forms the WebUI uses, element by element, so a value is refused in the form's own
words (naming the element of the file) and otherwise stored as the form cleaned it. All or
nothing, in one transaction, followed by a data-plane and a network apply. Ids are kept, so
every (service, server) pair keeps its connection mark: the same ruleset comes back.
"""

import base64
import datetime
import os
import re
import xml.etree.ElementTree as ET  # noqa: S405 - writing only; parsing goes through defusedxml

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt
from defusedxml import DefusedXmlException
from defusedxml.ElementTree import ParseError, fromstring
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db import transaction

from clusters.forms import AlertSettingsForm, FloatingIPForm, RealServerForm, VirtualServiceForm
from clusters.models import (
    AlertSettings,
    ConfigGeneration,
    FloatingIP,
    RealServer,
    VirtualService,
)
from clusters.tasks import apply_dataplane
from clusters.validators import validate_ipv4_host
from core.audit import record_change
from core.configuration import FLOATING, address_clash, holders
from core.version import __version__
from healthchecks.forms import HealthCheckScriptForm
from healthchecks.models import HealthCheckScript
from network import rules
from network.forms import (
    HostnameDnsForm,
    InterfacesForm,
    RoutingForm,
    VlanForm,
    clean_interface_name,
    connected_networks,
    listing_of,
)
from network.models import NetworkConfiguration
from network.tasks import apply_network_from_database

from .forms import OnlineUpdateForm
from .models import OnlineUpdate

SCHEMA = "3"
MAX_BYTES = 10 * 1024 * 1024
ENCRYPTED_MAGIC = b"LBADMIN-ENCRYPTED-BACKUP 1\n"

SERVICE_FIELDS = ("id", "label", "vip", "ports", "protocol", "forwarding", "scheduler",
                  "persistent", "persistence_timeout", "check_type", "check_script",
                  "check_port", "check_request", "check_host", "check_expect",
                  "check_interval", "check_timeout", "failure_count", "on_failure",
                  "fallback_ip", "fallback_port", "fallback_masq", "alert_address")
SERVER_FIELDS = ("id", "label", "ip", "port", "weight", "min_connections", "max_connections",
                 "state")
# Everything else stays the file's text until a form cleans it; ids are parsed here, since
# they say which row a value belongs to.
BOOLEANS = {"persistent", "fallback_masq", "enabled"}
IDS = {"id", "check_script"}
MAX_DNS = 3  # HostnameDnsForm's dns1..dns3


class BackupError(Exception):
    """The file cannot be restored; the message says why, in words."""


def _schema_1_to_2(root):
    """Schema 2 added <online-update>. A schema-1 file has none: restoring it keeps this
    appliance's own online update settings."""
    root.set("schema", "2")


def _schema_2_to_3(root):
    """Schema 3 added <alerts> and a virtual service's alert_address. A schema-2 file has
    neither: its services get no address of their own, and restoring it keeps this
    appliance's own alert settings."""
    root.set("schema", "3")


# Each older schema this appliance reads, and how it becomes the next one.
UPGRADES = {"1": _schema_1_to_2, "2": _schema_2_to_3}
# <alerts>'s attributes: the AlertSettingsForm's fields
ALERT_FIELDS = ("source_address", "destination_address", "smart_host", "smart_host_port",
                "webhook_url", "trap_host", "trap_port", "trap_community")


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
    alert_settings = AlertSettings.load()
    ET.SubElement(root, "alerts", {f: _text(getattr(alert_settings, f)) for f in ALERT_FIELDS})
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


SHOWN_AS_REFERENCE = re.compile(r'[\x00-\x1f\x7f"]')


def element(tag, **attributes):
    """How a refusal names an element of the file: <virtual-service label="VNA">. Quotes and
    control characters are shown as character references, as the file holds them."""
    shown = "".join(
        f' {name}="{SHOWN_AS_REFERENCE.sub(lambda c: f"&#{ord(c[0])};", str(value))}"'
        for name, value in attributes.items() if value not in (None, ""))
    return f"<{tag}{shown}>"


def errors_in_words(form, where, elements=None):
    """A bound form's errors as "<element …>: <field label>: <message>", one after another; a
    non-field error has no label. `elements` names another element for some fields, e.g. an
    interface's fields in InterfacesForm: {"mtu_eth1": '<interface name="eth1">'}."""
    problems = []
    for field, errors in form.errors.as_data().items():
        name = (elements or {}).get(field, where)
        label = "" if field == NON_FIELD_ERRORS else f"{form[field].label}: "
        problems += [f"{name}: {label}{message}" for error in errors for message in error]
    return " ".join(problems)


def _valid(form, where, elements=None):
    """The form, cleaned; or BackupError in the form's own words."""
    if not form.is_valid():
        raise BackupError(errors_in_words(form, where, elements))
    return form


def _refused_value(error, where, label=None):
    """BackupError from a per-value cleaner's ValidationError (no form around it)."""
    return BackupError(" ".join(f"{where}: {f'{label}: ' if label else ''}{message}"
                                 for message in error.messages))


ID = re.compile(r"[0-9]{1,18}")


def _attributes(node, allowed, where, ids=()):
    """The element's attributes as the file's strings (a form cleans them later); `ids` are
    parsed as whole numbers, blank = None."""
    unknown = set(node.attrib) - set(allowed)
    if unknown:
        raise BackupError(f"{where}: unknown attribute(s) {', '.join(sorted(unknown))}.")
    values = {}
    for name in allowed:
        raw = node.attrib.get(name, "")
        if name in BOOLEANS and raw not in ("true", "false", ""):
            raise BackupError(f"{where}: {name}=“{raw}” is neither true nor false.")
        if name in ids and raw != "":
            if not ID.fullmatch(raw):
                raise BackupError(f"{where}: {name}=“{raw}” is not a whole number.")
            values[name] = int(raw)
        else:
            values[name] = None if name in ids else raw
    return values


def _unique_id(values, seen, where):
    """Rows keep their ids (so connection marks stay): each must be given, and once."""
    if values["id"] is None:
        raise BackupError(f"{where}: the id is missing.")
    if values["id"] in seen:
        raise BackupError(f"{where}: id {values['id']} is given twice.")
    seen.add(values["id"])


def _children(node, allowed, where):
    for child in node:
        if child.tag not in allowed:
            raise BackupError(f"{where}: unknown element <{child.tag}>.")
    return node


def _named(node, *keys):
    return element(node.tag, **{key: node.attrib.get(key) for key in keys})


def _parse_network(node):
    where = "<network>"
    _children(node, {"interface", "vlan", "route", "dns"}, where)
    values = _attributes(node, ("hostname", "gateway4", "gateway6"), where)
    interfaces = {}
    for child in node.findall("interface"):
        here = _named(child, "name")
        item = _attributes(child, ("name", "mtu"), here)
        _children(child, {"address"}, here)
        if item["name"] in interfaces:
            raise BackupError(f"{here}: this interface is given twice.")
        interfaces[item["name"]] = {"addresses": [a.text or "" for a in child],
                                    "mtu": item["mtu"]}
    values["interfaces"] = interfaces
    values["vlans"] = []
    values["routes"] = []
    for child in node.findall("vlan"):
        here = _named(child, "parent", "id")
        _children(child, set(), here)
        vlan = _attributes(child, ("parent", "id"), here)
        values["vlans"].append([vlan["parent"], vlan["id"]])
    for child in node.findall("route"):
        here = _named(child, "destination", "gateway")
        _children(child, set(), here)
        values["routes"].append(_attributes(child, ("destination", "gateway"), here))
    for child in node.findall("dns"):
        _children(child, set(), "<dns>")
    values["dns"] = [c.text or "" for c in node.findall("dns")]
    return values


def parse(data):
    """Bytes of a backup -> plain data (the file's strings; ids as numbers), or BackupError;
    nothing is checked against the forms and nothing is changed here."""
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
    _children(root, {"network", "online-update", "alerts", "floating-ip",
                     "health-check-script", "virtual-service"}, "the backup")
    result = {"network": None, "online_update": None, "alerts": None, "floating_ips": [],
              "scripts": [],
              "services": [], "converted_from": converted_from if converted_from != SCHEMA
              else None}
    seen = {"virtual-service": set(), "real-server": set(), "health-check-script": set()}
    for child in root:
        if child.tag in ("network", "online-update", "alerts") and \
                result[child.tag.replace("-", "_")] is not None:
            raise BackupError(f"<{child.tag}> is given twice.")
        if child.tag == "alerts":
            _children(child, set(), "<alerts>")
            result["alerts"] = _attributes(child, ALERT_FIELDS, "<alerts>")
        elif child.tag == "online-update":
            where = "<online-update>"
            _children(child, set(), where)
            values = _attributes(child, ("enabled", "server-url"), where)
            result["online_update"] = {"enabled": values["enabled"],
                                       "server_url": values["server-url"]}
        elif child.tag == "network":
            result["network"] = _parse_network(child)
        elif child.tag == "floating-ip":
            where = _named(child, "address")
            _children(child, set(), where)
            result["floating_ips"].append(_attributes(child, ("address",), where)["address"])
        elif child.tag == "health-check-script":
            where = _named(child, "name")
            _children(child, set(), where)
            values = _attributes(child, ("id", "name", "type", "template"), where, ids={"id"})
            _unique_id(values, seen[child.tag], where)
            values["script"] = child.text or ""
            result["scripts"].append(values)
        else:
            where = _named(child, "label")
            _children(child, {"real-server"}, where)
            values = _attributes(child, SERVICE_FIELDS, where, ids={"id", "check_script"})
            _unique_id(values, seen[child.tag], where)
            values["servers"] = []
            for server in child:
                here = f"{where} {_named(server, 'label')}"
                _children(server, set(), here)
                server_values = _attributes(server, SERVER_FIELDS, here, ids={"id"})
                _unique_id(server_values, seen["real-server"], here)
                values["servers"].append(server_values)
            result["services"].append(values)
    return result


@transaction.atomic
def restore(parsed, user):
    """Replace the configuration with the backup's, all or nothing: every element through the
    form the WebUI uses for it, storing what the form cleaned. Everything is deleted first, so
    the rules over the whole configuration (a label or an address used twice, a gateway on a
    connected subnet) see only what is restored so far — never the live kernel."""
    interfaces_before = NetworkConfiguration.load().interfaces
    VirtualService.objects.all().delete()
    FloatingIP.objects.all().delete()
    HealthCheckScript.objects.all().delete()
    if parsed["network"]:
        # The file's interfaces replace this appliance's: the services are checked against
        # them (once they are restored, below), not against the ones being replaced.
        NetworkConfiguration.objects.filter(pk=1).update(interfaces={})
    for values in parsed["scripts"]:  # the services name them
        _restore_script(values)
    for values in parsed["services"]:
        _restore_service(values)
    # The network is checked after the VIPs (an interface address may not be one) and before
    # the floating IPs (which must lie in its subnets); its interface addresses are checked
    # once more after them, since an interface address may not be a floating IP either.
    network, networks = _clean_network(parsed["network"]) if parsed["network"] else (None, [])
    for address in parsed["floating_ips"]:
        _restore_floating_ip(address, networks if network and network["interfaces"] else None)
    if network:
        _interfaces_form(parsed["network"])
        stored = NetworkConfiguration.load()
        for key, value in network.items():
            setattr(stored, key, value)
        stored.save()
        _refuse_cutting_off(interfaces_before, network["interfaces"])
    if parsed["online_update"]:
        _restore_online_update(parsed["online_update"])
    if parsed.get("alerts"):
        form = AlertSettingsForm(parsed["alerts"], instance=AlertSettings.load())
        _valid(form, "<alerts>").save()
    ConfigGeneration.bump()
    record_change(user, f"restored a backup ({len(parsed['services'])} virtual services)")
    transaction.on_commit(_apply_everything, robust=True)


def _refuse_cutting_off(before, after):
    """The rule the WebUI's interfaces page guards with a confirmation (network.rules): a
    change may not leave the real servers, fallback servers, floating IPs or VIPs without the
    subnet they had. A restore cannot wait for a confirmation, so it is refused."""
    if not after:  # the file says nothing of the interfaces: nothing is taken away
        return
    cut = rules.left_unconnected(before, after, holders())
    if cut:
        raise BackupError("<network>: " + " ".join(rules.describe_unconnected(cut)))


def _restore_script(values):
    form = HealthCheckScriptForm({f: values[f] for f in ("name", "type", "template", "script")},
                                 instance=HealthCheckScript(pk=values["id"]))
    _valid(form, element("health-check-script", name=values["name"])).save()


def _restore_service(values):
    where = element("virtual-service", label=values["label"])
    data = {f: values[f] for f in SERVICE_FIELDS if f not in ("id", "check_script")}
    data["check_script"] = "" if values["check_script"] is None else str(values["check_script"])
    form = VirtualServiceForm(data, instance=VirtualService(pk=values["id"]))
    service = _valid(form, where).save()
    for server in values["servers"]:
        here = f"{where} {element('real-server', label=server['label'])}"
        # The state is not a field of the form (System Overview sets it): checked here.
        if server["state"] not in RealServer.State.values:
            raise BackupError(f"{here}: State: “{server['state']}” is not one of "
                              f"{', '.join(RealServer.State.values)}.")
        form = RealServerForm({f: server[f] for f in SERVER_FIELDS if f not in ("id", "state")},
                              instance=RealServer(pk=server["id"], service=service,
                                                  state=server["state"]),
                              service=service)
        _valid(form, here).save()


def _interfaces_form(network):
    """InterfacesForm over the backup's interfaces (their names are the listing), cleaned."""
    names = list(network["interfaces"])
    for name in names:
        try:
            clean_interface_name(name)
        except ValidationError as error:
            raise _refused_value(error, element("interface", name=name)) from None
        if name == "lo":  # the form has no fields for it: it would be dropped unsaid
            raise BackupError('<interface name="lo">: the loopback interface is not '
                              "configured here.")
    data = {}
    for name, settings in network["interfaces"].items():
        data[f"addresses_{name}"] = "\n".join(settings["addresses"])
        data[f"mtu_{name}"] = settings["mtu"]  # blank: the MTU is left as the interface has it
    elements = {f"{kind}_{name}": element("interface", name=name)
                for name in names for kind in ("addresses", "mtu")}
    form = InterfacesForm(data, interfaces=listing_of(names), configured={})
    return _valid(form, "<network>", elements)


def _clean_network(network):
    """The backup's <network> through the Local Configuration forms -> (the values to store,
    the connected subnets they give)."""
    interfaces = _interfaces_form(network).configuration()
    listing = listing_of(list(network["interfaces"]))
    vlans = []
    for parent, vid in network["vlans"]:
        form = VlanForm({"parent": parent, "vlan_id": vid}, interfaces=listing, vlans=vlans)
        cleaned = _valid(form, element("vlan", parent=parent, id=vid)).cleaned_data
        vlans.append([cleaned["parent"], cleaned["vlan_id"]])
    networks = connected_networks(listing, interfaces)
    gateways = _valid(RoutingForm({"gateway4": network["gateway4"],
                                   "gateway6": network["gateway6"], "routes": ""},
                                  networks=networks), "<network>").cleaned_data
    routes = []
    for route in network["routes"]:
        where = element("route", **route)
        form = RoutingForm({"routes": f"{route['destination']} {route['gateway']}"},
                           networks=networks)
        cleaned = _valid(form, where).cleaned_data["routes"]
        if len(cleaned) != 1:  # both blank, or a line break smuggled into an attribute
            raise BackupError(f"{where}: a route is one destination and one gateway.")
        routes += cleaned
    # Each route passed alone; one form over all of them finds what spans routes (the same
    # destination twice), and its "Line N" names the route element.
    together = RoutingForm({"routes": "\n".join(f"{r['destination']} {r['gateway']}"
                                                for r in network["routes"])},
                           networks=networks)
    if not together.is_valid():
        message = together.errors["routes"][0]
        line = re.match(r"Line (\d+)", message)
        where = element("route", **network["routes"][int(line.group(1)) - 1]) if line \
            else "<network>"
        raise BackupError(f"{where}: {RoutingForm.base_fields['routes'].label}: {message}")
    if len(network["dns"]) > MAX_DNS:
        raise BackupError(f"<network>: at most {MAX_DNS} DNS servers; the file gives "
                          f"{len(network['dns'])}.")
    form = HostnameDnsForm({"hostname": network["hostname"]} |
                           {f"dns{n}": server for n, server in enumerate(network["dns"], 1)})
    names = _valid(form, "<network>").cleaned_data
    return {"interfaces": interfaces, "vlans": vlans, "gateway4": gateways["gateway4"],
            "gateway6": gateways["gateway6"], "routes": routes, "hostname": names["hostname"],
            "dns": [names[f"dns{n}"] for n in range(1, MAX_DNS + 1) if names[f"dns{n}"]]}, \
        networks


def _restore_floating_ip(address, networks):
    where = element("floating-ip", address=address)
    if networks is not None:
        form = FloatingIPForm({"address": address}, networks=networks)
        FloatingIP.objects.create(address=_valid(form, where).cleaned_data["address"])
        return
    # The file has no <interface>, so it says nothing of the subnets, and a restore never asks
    # the live kernel: only the address itself can be checked (the data plane brings it up
    # once an interface's subnet holds it), and that it is used once.
    label = FloatingIPForm.base_fields["address"].label
    try:
        address = validate_ipv4_host(address)
    except ValidationError as error:
        raise _refused_value(error, where, label) from None
    clash = address_clash(address, FLOATING)
    if clash:
        raise BackupError(f"{where}: {label}: {clash}")
    FloatingIP.objects.create(address=address)


def _restore_online_update(values):
    form = OnlineUpdateForm({"enabled": values["enabled"], "server_url": values["server_url"]},
                            instance=OnlineUpdate.load())
    _valid(form, "<online-update>").save()


def _apply_everything():
    apply_network_from_database.apply_async()
    apply_dataplane.apply_async(kwargs={"full": True})
