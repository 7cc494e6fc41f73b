"""The commercial appliance's `lbcli` actions, for API v2 (/api/v2/) and the `lbcli` command.

A call is a dict of lbcli options — `{"action": "add-vip", "vip": "VNA", "ip": "…", …}`, as
API v2's body carries them and as `lbcli --action add-vip --vip VNA --ip …` parses into. Each
action maps the commercial names and values onto the WebUI's own form (VirtualServiceForm,
RealServerForm, FloatingIPForm, HostnameDnsForm), validates with it and calls the same do_*
action, so a refusal has the WebUI's words (Network Interface Configuration's too:
InterfacesForm, through network.services.interfaces_form). The answer per call is the
commercial one:
`{"action": …, "status": "success"|"failed"|"exists"|"missing"|"fatal", "error": "…"}`:

- failed: the form refused a value (its words, after the option's name), or lbadmin lacks the
  feature ("not supported: …");
- exists: an add of something already there — nothing done;
- missing: a virtual service, real server or floating IP that is not there — nothing done;
- fatal: a malformed call (no action, an unknown action or option, a required option absent).

`run(calls, user, role)` runs a list of calls as ONE batch (api.batch): one transaction, one
configuration generation, one apply, one revision. A call that is `failed` or `fatal` undoes
the whole batch (the calls before it answer "not saved", those after "not run"); `exists` and
`missing` change nothing and let the batch go on, so a deployment script can run again.
Network changes (`interface`: the kernel takes them at once, which no transaction undoes) run
first, each alone, before the batch; one after another call is refused.
Who may do what is core.roles' table: each action is checked as the WebUI URL whose rule
applies (ACCESS), before anything runs.
"""

import contextlib
import getpass

from django.forms.models import model_to_dict

from clusters import services as cluster_services
from clusters.forms import FloatingIPForm, RealServerForm, VirtualServiceForm
from clusters.models import FloatingIP, RealServer, VirtualService
from clusters.validators import format_ports, parse_ports
from core import roles
from core.audit import record_audit
from core.runtime import SERVICES
from core.workers import BROKER_ERRORS, WorkerUnavailable, ask_dataplane
from ha import replication, secondary
from ha.tasks import catch_up
from healthchecks.models import HealthCheckScript
from maintenance import backup, restarts
from network import services as network_services
from network.forms import HostnameDnsForm, connected_networks
from network.models import NetworkConfiguration
from network.tasks import write_resolver_files

from .batch import batch

SUCCESS, FAILED, EXISTS, MISSING, FATAL = "success", "failed", "exists", "missing", "fatal"
NOTHING_TO_RELOAD = "nothing to reload: changes are live"
NAT_ONLY = "not supported: lbadmin forwards by NAT (masq) only"
MAX_CALLS = 20_000


class Refusal(Exception):
    """A call answered with `status` and `error` in words."""

    def __init__(self, status, error):
        super().__init__(error)
        self.status, self.error = status, error


def fatal(error):
    return Refusal(FATAL, error)


def failed(error):
    return Refusal(FAILED, error)


# -- values in the commercial spelling --------------------------------------------------------

ON = {"on", "yes", "true", "1", "enabled", "enable", "y"}
OFF = {"off", "no", "false", "0", "disabled", "disable", "n", ""}


def on_off(option, value):
    lowered = str(value).strip().lower()
    if lowered in ON:
        return True
    if lowered in OFF:
        return False
    raise failed(f"{option}: “{value}” is neither on nor off.")


def lbcli_ports(value):
    """The commercial port syntax in lbadmin's: `80`, `80:81` (a list: the appliance's colon),
    `800-900`, and mixtures such as `80:443,8000-8080` → "80,443,8000-8080". What is not a
    port is left for the form's validator to refuse in its words."""
    text = str(value).strip().replace(":", ",")
    try:
        return format_ports(parse_ports(text))
    except Exception:  # noqa: BLE001 - the form says what is wrong, in its words
        return text


PROTOCOLS = {"tcp": "tcp", "udp": "udp", "tcpudp": "tcp+udp", "tcp+udp": "tcp+udp"}
FORWARDING = {"masq": "nat", "nat": "nat"}
SCHEDULERS = {"wlc": "wlc", "wrr": "wrr"}
CHECK_TYPES = {"connect": "connect", "external": "external", "ping": "ping", "on": "on",
               "off": "off", "http": "http", "https": "https"}
NEGOTIATE_SERVICES = {"http": "http", "https": "https"}


def forwarding(value):
    method = str(value).strip().lower()
    if method not in FORWARDING:
        raise failed(f"{NAT_ONLY}: --forwarding {method} (direct routing, gate, or IP-in-IP "
                     "tunnelling, ipip) is not part of its nftables data plane.")
    return FORWARDING[method]


def choice(option, value, table, unsupported_words):
    lowered = str(value).strip().lower()
    if lowered in table:
        return table[lowered]
    raise failed(f"{option}: {unsupported_words(lowered)}")


# -- the options of each action, and how they map onto the WebUI's fields ----------------------

# add-vip / edit-vip: the option's commercial name → (the form field, how its value maps)
VIP_OPTIONS = {
    "ip": ("vip", str),
    "ports": ("ports", lbcli_ports),
    "protocol": ("protocol", lambda v: choice(
        "protocol", v, PROTOCOLS,
        lambda p: f"“{p}” is not supported: lbadmin takes tcp, udp or tcpudp "
                  "(firewall marks and one-packet scheduling are not part of it).")),
    "forwarding": ("forwarding", lambda v: forwarding(v)),
    "scheduler": ("scheduler", lambda v: choice(
        "scheduler", v, SCHEDULERS,
        lambda s: f"“{s}” is not supported: lbadmin schedules by wlc (weighted least-connection, "
                  "emulated) or wrr (weighted round robin).")),
    "persistent": ("persistent", lambda v: on_off("persistent", v)),
    "persist_time": ("persistence_timeout", str),
    "fallback_ip": ("fallback_ip", str),
    "fallback_port": ("fallback_port", str),
    "fallback_masq": ("fallback_masq", lambda v: on_off("fallback_masq", v)),
    "check_type": ("check_type", None),  # with check_service: see _check_type
    "check_port": ("check_port", str),
    "check_vhost": ("check_host", str),
    "check_request": ("check_request", str),
    "check_response": ("check_expect", str),
    "check_command": ("check_script", None),  # a Health Check Script's name: see _check_script
    "check_interval": ("check_interval", str),
    "check_timeout": ("check_timeout", str),
    "check_failures": ("failure_count", str),
    "email": ("alert_address", str),
}
VIP_ACCEPTED = {"layer", "check_service"}  # read by the action itself
# On the commercial appliance a Layer 4 service defaults to weighted least-connection and a
# connect-to-port check; forwarding defaults to direct routing there, which lbadmin has not,
# so NAT (masq). The rest are the WebUI's defaults (the model's).
ADD_VIP_DEFAULTS = {"scheduler": "wlc", "check_type": "connect", "forwarding": "nat"}

RIP_OPTIONS = {
    "ip": ("ip", str),
    "port": ("port", str),
    "weight": ("weight", str),
    "minconns": ("min_connections", str),
    "maxconns": ("max_connections", str),
}

# the WebUI's field → the lbcli option that sets it (to name the option in an error)
OPTION_OF_FIELD = {field: option for options in (VIP_OPTIONS, RIP_OPTIONS)
                   for option, (field, _) in options.items()} | {"label": "vip"}


def _check_type(call):
    kind = str(call["check_type"]).strip().lower()
    if kind == "negotiate":
        service = str(call.get("check_service", "http")).strip().lower()
        if service not in NEGOTIATE_SERVICES:
            raise failed(f"check_service: “{service}” is not supported: lbadmin negotiates "
                         "http or https.")
        return NEGOTIATE_SERVICES[service]
    if kind not in CHECK_TYPES:
        raise failed(f"check_type: “{kind}” is not supported: lbadmin checks by connect, "
                     "negotiate (http, https), external, ping, on or off.")
    return CHECK_TYPES[kind]


def _check_script(call):
    name = str(call["check_command"]).strip()
    if not name:
        return ""
    script = HealthCheckScript.objects.filter(name=name).first()
    if script is None:
        raise Refusal(MISSING, f"check_command: no health check script named “{name}” "
                               "(Cluster Configuration › Health Check Scripts).")
    return script.pk


def _mapped(call, options, data):
    for option, (field, convert) in options.items():
        if option not in call:
            continue
        if option == "check_type":
            data[field] = _check_type(call)
        elif option == "check_command":
            data[field] = _check_script(call)
        else:
            data[field] = convert(call[option])
    return data


def form_data(instance, fields):
    """The instance's values as a bound form's data (None as blank, as a browser sends)."""
    values = model_to_dict(instance, fields=fields)
    return {name: "" if value is None else value for name, value in values.items()}


def form_errors(form):
    """The form's refusals in its own words, each after the lbcli option (or the field's
    label) it belongs to."""
    parts = []
    for field, messages in form.errors.items():
        if field == "__all__":
            parts.extend(messages)
            continue
        name = OPTION_OF_FIELD.get(field) or str(form.fields[field].label or field)
        parts.extend(f"{name}: {message}" for message in messages)
    return " ".join(parts)


def _required(call, *options):
    absent = [option for option in options if str(call.get(option, "")).strip() == ""]
    if absent:
        raise fatal(f"{call['action']} needs --{' --'.join(absent)}.")


def _service(call, ctx):
    """The service labelled --vip; remembered for the batch (a batch adds a service, then its
    real servers: one lookup, not one per real server)."""
    label = str(call["vip"]).strip()
    service = ctx.services.get(label)
    if service is None:
        service = VirtualService.objects.filter(label=label).first()
    if service is None:
        raise Refusal(MISSING, f"No virtual service is labelled “{label}”.")
    ctx.services[label] = service
    return service


def _real_server(service, call):
    label = str(call["rip"]).strip()
    server = service.real_servers.filter(label=label).first()
    if server is None:
        raise Refusal(MISSING, f"Virtual service “{service.label}” has no real server "
                               f"labelled “{label}”.")
    return server


# -- the actions -----------------------------------------------------------------------------

class Context:
    """What an action gets besides its call: who acts, the batch (for work after commit) and
    the call's answer (`entry`), which such work may still change."""

    def __init__(self, user, batch):
        self.user, self.batch, self.entry = user, batch, None
        self.services = {}  # label → VirtualService, as this batch left it
        self.primary = None  # the Primary's address when this appliance is a Secondary
        self.arrived_on = ""  # the appliance's address the call came to ("" for lbcli)


def add_vip(call, ctx):
    _required(call, "vip", "ip", "ports")
    _layer4(call)
    data = form_data(VirtualService(), VirtualServiceForm._meta.fields) | ADD_VIP_DEFAULTS
    data["label"] = str(call["vip"]).strip()
    return _save_service(VirtualService(), _mapped(call, VIP_OPTIONS, data), ctx)


def edit_vip(call, ctx):
    _required(call, "vip")
    _layer4(call)
    service = _service(call, ctx)
    data = _mapped(call, VIP_OPTIONS, form_data(service, VirtualServiceForm._meta.fields))
    return _save_service(service, data, ctx)


def _layer4(call):
    layer = str(call.get("layer", "4")).strip()
    if layer != "4":
        raise failed(f"layer: “{layer}” is not supported: lbadmin is a Layer 4 load balancer "
                     "(--layer 4).")


# the forms' words for a label already taken: an add of it answers `exists`
SERVICE_LABEL_TAKEN = VirtualService._meta.get_field("label").error_messages["unique"]
SERVER_LABEL_TAKEN = "This virtual service already has a real server with this label."


def _refused(form, label_taken):
    if label_taken in form.errors.get("label", []):
        return Refusal(EXISTS, label_taken)
    return failed(form_errors(form))


def _save_service(service, data, ctx):
    form = VirtualServiceForm(data, instance=service)
    if not form.is_valid():
        raise _refused(form, SERVICE_LABEL_TAKEN if service.pk is None else None)
    cluster_services.do_save_service(form.instance, ctx.user)
    ctx.services[form.instance.label] = form.instance
    return {}


def delete_vip(call, ctx):
    _required(call, "vip")
    service = _service(call, ctx)
    cluster_services.do_delete_service(service, ctx.user)
    ctx.services.pop(service.label, None)
    return {}


def add_rip(call, ctx):
    _required(call, "vip", "rip", "ip")
    service = _service(call, ctx)
    server = RealServer(service=service)
    data = form_data(server, RealServerForm._meta.fields) | {"label": str(call["rip"]).strip()}
    return _save_real_server(server, service, _mapped(call, RIP_OPTIONS, data), ctx)


def edit_rip(call, ctx):
    _required(call, "vip", "rip")
    service = _service(call, ctx)
    server = _real_server(service, call)
    data = _mapped(call, RIP_OPTIONS, form_data(server, RealServerForm._meta.fields))
    return _save_real_server(server, service, data, ctx)


def _save_real_server(server, service, data, ctx):
    form = RealServerForm(data, instance=server, service=service)
    if not form.is_valid():
        raise _refused(form, SERVER_LABEL_TAKEN if server.pk is None else None)
    cluster_services.do_save_real_server(form.instance, ctx.user)
    return {}


def delete_rip(call, ctx):
    _required(call, "vip", "rip")
    cluster_services.do_delete_real_server(_real_server(_service(call, ctx), call), ctx.user)
    return {}


def set_state(state):
    def action(call, ctx):
        """--vip V --rip R, or --rip R --services all: that label in every service."""
        _required(call, "rip")
        every = str(call.get("services", "")).strip().lower()
        if every and every != "all":
            raise fatal(f"--services takes only “all” (every virtual service with real server "
                        f"“{call['rip']}”), not “{every}”.")
        if every:
            label = str(call["rip"]).strip()
            servers = list(RealServer.objects.select_related("service").filter(label=label))
            if not servers:
                raise Refusal(MISSING, f"No virtual service has a real server labelled "
                                       f"“{label}”.")
        else:
            _required(call, "vip")
            servers = [_real_server(_service(call, ctx), call)]
        for server in servers:
            cluster_services.do_set_state(server, state, ctx.user)
            if ctx.primary is not None:  # a Secondary: the Primary is told, as the WebUI does
                replication.do_queue_local_action(server.pk, state, ctx.user)
        if ctx.primary is not None:
            ctx.batch.after_commit(_send_to_primary)
        return {"services": [server.service.label for server in servers]} if every else {}
    return action


def _send_to_primary():
    with contextlib.suppress(*BROKER_ERRORS):  # the catch-up (beat, 2 s) sends it later
        catch_up.apply_async()


def add_floating_ip(call, ctx):
    _required(call, "ip")
    address = str(call["ip"]).strip()
    if FloatingIP.objects.filter(address=address).exists():
        raise Refusal(EXISTS, "This floating IP is already added.")
    # the configuration's subnets, never the kernel's: the rule of the WebUI's page and restore
    form = FloatingIPForm({"address": address}, networks=connected_networks(
        [], NetworkConfiguration.load().interfaces))
    if not form.is_valid():
        raise failed(" ".join(f"ip: {message}" for message in form.errors["address"]))
    cluster_services.do_add_floating_ip(form.cleaned_data["address"], ctx.user)
    return {}


def delete_floating_ip(call, ctx):
    _required(call, "ip")
    address = str(call["ip"]).strip()
    floating = FloatingIP.objects.filter(address=address).first()
    if floating is None:
        raise Refusal(MISSING, f"{address} is not a floating IP here.")
    cluster_services.do_remove_floating_ip(floating, ctx.user)
    return {}


def _hostname_dns(ctx, hostname, dns):
    """Local Configuration › Hostname & DNS through its form and action; the files are
    written by the dataplane worker once the batch committed, as the page does."""
    data = {"hostname": hostname, **{f"dns{i + 1}": (dns + ["", "", ""])[i] for i in range(3)}}
    form = HostnameDnsForm(data)
    if not form.is_valid():
        names = {"hostname": "hostname", "dns1": "dns1", "dns2": "dns2", "dns3": "dns3"}
        raise failed(" ".join(f"{names[field]}: {message}"
                              for field, messages in form.errors.items()
                              for message in messages))
    stored = network_services.do_save_hostname_dns(
        form.cleaned_data["hostname"],
        [form.cleaned_data[f] for f in ("dns1", "dns2", "dns3") if form.cleaned_data[f]],
        ctx.user)
    entry = ctx.entry

    def write_files():
        try:
            ask_dataplane(write_resolver_files, hostname=stored.hostname, dns=stored.dns)
        except WorkerUnavailable as problem:
            entry["warning"] = f"Saved, but not written yet: {problem}"
        if problem := network_services.refresh_snmp():  # the hostname is SNMP's sysName
            entry["warning"] = f"SNMP's sysName is not updated yet: {problem}"

    ctx.batch.after_commit(write_files)
    return {}


def hostname(call, ctx):
    _required(call, "hostname")
    return _hostname_dns(ctx, str(call["hostname"]).strip(),
                         list(NetworkConfiguration.load().dns))


def dns(call, ctx):
    given = [str(call[f"dns{i}"]).strip() for i in (1, 2, 3) if f"dns{i}" in call]
    if not given:
        raise fatal("dns needs --dns1 (and --dns2, --dns3 if wanted).")
    return _hostname_dns(ctx, NetworkConfiguration.load().hostname,
                         [address for address in given if address])


def interface(call, ctx):
    """Local Configuration › Network Interface Configuration (the guide's 6.1.1): `--interface
    eth1 --ip 198.51.100.1/24` (comma-separated CIDRs; an empty --ip removes them all) and/or
    `--mtu`, through the page's form and action. lbadmin's own action: the commercial lbcli
    has none that we know of.

    The kernel takes the change at once (the dataplane worker), which a batch's transaction
    cannot undo: `run` makes these calls first, each alone, and refuses one after any other
    call. A change the lock-out guard would hold (it cuts a subnet the servers live in, or the
    address the call came to) is refused: a held change is rolled back unless confirmed in
    time from the WebUI's page, and a script that read "success" would lose it silently."""
    _required(call, "interface")
    if "ip" not in call and "mtu" not in call:
        raise fatal("interface needs --ip (comma-separated CIDRs) or --mtu.")
    if ctx.batch is not None:
        raise failed(NETWORK_FIRST)
    name = str(call["interface"]).strip()
    changed = {}
    if "ip" in call:
        changed["addresses"] = [a for a in str(call["ip"]).replace(",", " ").split() if a]
    if "mtu" in call:
        changed["mtu"] = str(call["mtu"]).strip()
    listing, error = network_services.live_interfaces()
    if listing is None:
        raise failed(error)
    form = network_services.interfaces_form(listing, changed={name: changed})
    if not form.is_valid():
        raise failed(_interface_errors(form))
    changes = network_services.interfaces_change(form)
    if reasons := network_services.lockout_reasons(changes, ctx.arrived_on):
        raise failed(" ".join(reasons) + " " + HELD_IN_THE_WEBUI)
    try:
        network_services.do_configure_network(changes, ctx.user, ctx.arrived_on)
    except network_services.NetworkRefused as refused:
        raise failed(f"{refused} The previous settings stay.") from None
    except WorkerUnavailable as problem:
        raise failed(f"{problem} Nothing was changed.") from None
    return {"interface": name}


NETWORK_FIRST = ("interface: network changes come first in a batch, before every other call: "
                 "the kernel takes them at once, so the batch's transaction could not undo "
                 "them.")
HELD_IN_THE_WEBUI = ("Not changed: make it under Local Configuration › Network Interface "
                     "Configuration, where it can be confirmed once you have reached the "
                     "appliance again.")


def _interface_errors(form):
    """The form's words after the lbcli option they belong to (--ip, --mtu)."""
    return " ".join(
        message if field == "__all__" else
        f"{'ip' if field.startswith('addresses_') else 'mtu'}: {message}"
        for field, messages in form.errors.items() for message in messages)


def list_(call, ctx):
    _required(call, "function")
    function = str(call["function"]).strip().lower()
    if function == "virtual":
        return {"data": [_service_listing(service) for service in
                         VirtualService.objects.prefetch_related("real_servers")]}
    if function == "floatingip":
        return {"data": list(FloatingIP.objects.values_list("address", flat=True))}
    if function == "dumpconfig":  # the whole configuration: Backup & Restore's XML
        record_audit(ctx.user, "downloaded a backup (lbcli list --function dumpconfig)")
        return {"data": backup.export_xml().decode()}
    raise fatal(f"list --function takes virtual, floatingip or dumpconfig, not “{function}”.")


def _service_listing(service):
    return {
        "vip": service.label, "ip": service.vip, "ports": service.ports,
        "protocol": {v: k for k, v in PROTOCOLS.items()}.get(service.protocol),
        "forwarding": "masq", "scheduler": service.scheduler,
        "persistent": "on" if service.persistent else "off",
        "persist_time": service.persistence_timeout, "check_type": service.check_type,
        "fallback_ip": service.fallback_ip, "fallback_port": service.fallback_port,
        "fallback_masq": "on" if service.fallback_masq else "off",
        "rips": [{"rip": server.label, "ip": server.ip, "port": server.port or "",
                  "weight": server.weight, "minconns": server.min_connections,
                  "maxconns": server.max_connections, "state": server.state}
                 for server in service.real_servers.all()],
    }


# The commercial appliance's daemons → lbadmin's (Maintenance › Restart Services).
# ldirectord is its health checker (its changes are live here: the data plane applies each
# change itself), heartbeat its HA daemon.
RESTARTED_AS = {"ldirectord": "worker-checks", "heartbeat": "keepalived",
                "keepalived": "keepalived", "snmpd": "snmpd", "snmp": "snmpd",
                "ntp": "chronyd", "ntpd": "chronyd", "chronyd": "chronyd",
                "redis": "redis", "webui": "web", "web": "web"} | {name: name for name in SERVICES}
# reloads that have nothing to do here: lbadmin applies each change as it is saved
LIVE_WITHOUT_RELOAD = {"ldirectord": "the data plane takes every change as it is saved",
                       "firewall": "Firewall Lock Down and the data plane apply on save"}
NO_SUCH_DAEMON = {
    "haproxy": "lbadmin has no HAProxy: it is a Layer 4 load balancer",
    "stunnel": "lbadmin has no STunnel (SSL termination is Layer 7)",
    "pound": "lbadmin has no Pound (SSL termination is Layer 7)",
    "collectd": "lbadmin samples its graphs itself (Local Configuration › Graphing)",
    "syslog": "lbadmin writes its own logs (Logs)",
}


def restart_or_reload(verb, daemon):
    def action(call, ctx):
        if verb == "reload" and daemon in LIVE_WITHOUT_RELOAD:
            return {"message": f"{NOTHING_TO_RELOAD} ({LIVE_WITHOUT_RELOAD[daemon]})"}
        if daemon in NO_SUCH_DAEMON:
            raise failed(f"not supported: {NO_SUCH_DAEMON[daemon]}.")
        name = RESTARTED_AS.get(daemon)
        if name is None:
            raise fatal(f"Unknown action “{verb}-{daemon}”.")
        entry = ctx.entry

        def restart():  # a reload is a restart here: the services read their files at start
            try:
                restarts.request_restart([name], ctx.user)
            except WorkerUnavailable as problem:
                entry.update(status=FAILED, error=f"{name} was not restarted: {problem}")

        ctx.batch.after_commit(restart)
        return {"service": name}
    return action


ACTIONS = {
    "add-vip": add_vip, "edit-vip": edit_vip, "delete-vip": delete_vip,
    "add-rip": add_rip, "edit-rip": edit_rip, "delete-rip": delete_rip,
    "drain": set_state(RealServer.State.DRAIN), "halt": set_state(RealServer.State.HALT),
    "online": set_state(RealServer.State.ONLINE),
    "add-floating-ip": add_floating_ip, "delete-floating-ip": delete_floating_ip,
    "list": list_, "hostname": hostname, "dns": dns, "interface": interface,
}
OPTIONS = {
    "add-vip": set(VIP_OPTIONS) | VIP_ACCEPTED | {"vip"},
    "edit-vip": set(VIP_OPTIONS) | VIP_ACCEPTED | {"vip"},
    "delete-vip": {"vip", "layer"},
    "add-rip": set(RIP_OPTIONS) | {"vip", "rip", "layer"},
    "edit-rip": set(RIP_OPTIONS) | {"vip", "rip", "layer"},
    "delete-rip": {"vip", "rip", "layer"},
    "drain": {"vip", "rip", "services"}, "halt": {"vip", "rip", "services"},
    "online": {"vip", "rip", "services"},
    "add-floating-ip": {"ip"}, "delete-floating-ip": {"ip"},
    "list": {"function"}, "hostname": {"hostname"}, "dns": {"dns1", "dns2", "dns3"},
    "interface": {"interface", "ip", "mtu"},
}
# Who may: the WebUI URL (and method, and button) whose rule in core.roles applies.
ACCESS = {
    "add-vip": ("cluster:virtual-service-add", "POST", None),
    "edit-vip": ("cluster:virtual-service-edit", "POST", None),
    "delete-vip": ("cluster:virtual-service-delete", "POST", None),
    "add-rip": ("cluster:real-server-add", "POST", None),
    "edit-rip": ("cluster:real-server-edit", "POST", None),
    "delete-rip": ("cluster:real-server-delete", "POST", None),
    "drain": ("overview:set-state", "POST", None), "halt": ("overview:set-state", "POST", None),
    "online": ("overview:set-state", "POST", None),
    "add-floating-ip": ("cluster:floating-ips", "POST", None),
    "delete-floating-ip": ("cluster:floating-ip-remove", "POST", None),
    "hostname": ("local:hostname-dns", "POST", None), "dns": ("local:hostname-dns", "POST", None),
    "interface": ("local:interfaces", "POST", None),
    "restart": ("maintenance:restart-service", "POST", None),
}
LIST_ACCESS = {"virtual": ("overview:index", "GET", None),
               "floatingip": ("cluster:floating-ips", "GET", None),
               "dumpconfig": ("maintenance:backup-restore", "POST", {"download": "1"})}
READ_ONLY = {"list"}
# What a Secondary of a pair takes (applied here, queued for the Primary: System Overview's
# buttons, the guide's 7.2); any other change is refused there with the WebUI's words.
ON_A_SECONDARY = {"list", "drain", "halt", "online"}


def normalised(call):
    """The call with its option names as lbcli spells them (`fallback-ip` = `fallback_ip`,
    `--vip` = `vip`), or a fatal Refusal for what is not a call."""
    if not isinstance(call, dict):
        raise fatal("Each call is an object such as {\"action\": \"list\", \"function\": "
                    "\"virtual\"}.")
    options = {}
    for key, value in call.items():
        name = str(key).strip().lstrip("-").replace("-", "_").lower()
        if isinstance(value, dict | list):
            raise fatal(f"--{name} takes a single value, not a list or an object.")
        options[name] = "" if value is None else value if isinstance(value, str) else \
            ("on" if value is True else "off" if value is False else str(value))
    action = str(options.get("action", "")).strip().lower().replace("_", "-")
    if not action:
        raise fatal("No action: each call names one, e.g. {\"action\": \"add-vip\", …}.")
    options["action"] = action
    return options


def handler_of(call):
    """(handler, access) for the call, or a fatal Refusal (an unknown action or option)."""
    action = call["action"]
    verb, _, daemon = action.partition("-")
    if action in ACTIONS:
        unknown = sorted(set(call) - OPTIONS[action] - {"action"})
        if unknown:
            raise fatal(f"{action} takes no option --{', --'.join(unknown)}.")
        if action == "list":
            return ACTIONS[action], LIST_ACCESS.get(str(call.get("function", "")).strip()
                                                    .lower(), LIST_ACCESS["virtual"])
        return ACTIONS[action], ACCESS[action]
    if verb in ("restart", "reload") and daemon:
        return restart_or_reload(verb, daemon), ACCESS["restart"]
    raise fatal(f"Unknown action “{action}”. lbadmin knows {', '.join(sorted(ACTIONS))} "
                "and restart-<service> / reload-<service>.")


def answer(call, status, error="", **extra):
    entry = {"action": call.get("action", "") if isinstance(call, dict) else ""}
    for option in ("vip", "rip", "interface", "ip", "function"):
        if isinstance(call, dict) and option in call:
            entry[option] = call[option]
    entry["status"] = status
    if error:
        entry["error"] = error
    entry.update(extra)
    return entry


class _Undo(Exception):
    """Leaves the batch's transaction so that it rolls back."""


def run(calls, user, role, via="API v2", arrived_on=""):
    """Run `calls` (a list of dicts) as one batch for `user` of `role`; return
    (answers, refused_for_role): one answer per call, in order, and whether the key's role
    was refused (then nothing ran). `arrived_on`: the appliance's address the call came to
    (the lock-out guard's; "" for lbcli on the appliance).

    Network changes (`interface`) at the head of the calls run first, each alone and kept
    whatever follows (the kernel took them); the batch is the calls after them."""
    prepared = []
    for raw in calls:
        try:
            call = normalised(raw)
            prepared.append((call, *handler_of(call), None))
        except Refusal as refusal:
            prepared.append((raw if isinstance(raw, dict) else {}, None, None, refusal))
    # who may: every call checked before any runs, so a refusal changes nothing
    refused = [i for i, (call, _, access, _) in enumerate(prepared)
               if access is not None and not roles.allows(role, *access)]
    if refused:
        answers = []
        for i, (call, _, access, problem) in enumerate(prepared):
            if problem is not None:
                answers.append(answer(call, problem.status, problem.error))
            elif i in refused:
                answers.append(answer(call, FAILED, roles.refusal(role, *access[:2])))
            else:
                answers.append(answer(call, FAILED, "not run: another call of this request "
                                                    "is refused to the key's role."))
        return answers, True
    answers = [None] * len(prepared)
    first = 0  # the first call of the batch: those before it are network changes, made alone
    while first < len(prepared) and prepared[first][1] is interface:
        call = prepared[first][0]
        alone = Context(user, None)
        alone.arrived_on = arrived_on
        answers[first] = answer(call, SUCCESS)
        try:
            answers[first].update(interface(call, alone))
        except Refusal as refusal:
            answers[first] = answer(call, refusal.status, refusal.error)
            for i in range(first + 1, len(prepared)):
                answers[i] = answer(prepared[i][0], FAILED, f"not run: call {first + 1} "
                                                            "(interface) failed.")
            return answers, False
        first += 1
    writes = any(call["action"] not in READ_ONLY for call, handler, _, _ in prepared[first:]
                 if handler is not None)
    primary = secondary.primary_of_this_secondary() if writes else None
    stopped_at = None
    try:
        with batch(user, via) as current:
            ctx = Context(user, current)
            ctx.primary = primary
            ctx.arrived_on = arrived_on
            for i, (call, handler, _, problem) in enumerate(prepared):
                if i < first:
                    continue
                if problem is None and primary is not None and \
                        call["action"] not in ON_A_SECONDARY:
                    problem = failed(f"Not changed: {secondary.notice(primary)}")
                if problem is None:
                    ctx.entry = answers[i] = answer(call, SUCCESS)
                    try:
                        answers[i].update(handler(call, ctx))
                        continue
                    except Refusal as refusal:
                        problem = refusal
                answers[i] = answer(call, problem.status, problem.error)
                if problem.status in (FAILED, FATAL):
                    stopped_at = i
                    raise _Undo
    except _Undo:
        failing = prepared[stopped_at][0].get("action", "")
        for i, (call, _, _, _) in enumerate(prepared):
            # a read before it answers nothing either: its audit line (a dumpconfig's) went
            # with the batch
            if first <= i < stopped_at and answers[i]["status"] == SUCCESS:
                answers[i] = answer(call, FAILED, f"not saved: call {stopped_at + 1} "
                                                  f"({failing}) failed, so the whole batch "
                                                  "was undone.")
            elif i > stopped_at:
                answers[i] = answer(call, FAILED, f"not run: call {stopped_at + 1} "
                                                  f"({failing}) failed.")
    return answers, False


def local_user():
    """Who `lbcli` on the appliance acts as in the User Log: the system user running it."""
    try:
        return f"lbcli ({getpass.getuser()})"
    except (KeyError, OSError):
        return "lbcli"
