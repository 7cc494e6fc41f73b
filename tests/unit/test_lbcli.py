"""The lbcli actions (api.lbcli) — the commercial names, values and defaults mapped onto the
WebUI's forms and actions — and the `lbcli` command's parsing and output."""

import io
import json

import pytest

from api import lbcli, lbcli_command
from clusters.models import ConfigGeneration, FloatingIP, RealServer, VirtualService
from core import roles
from core.models import AuditEntry
from ha.models import Pair, PendingAction
from maintenance import restarts
from maintenance.models import Revision
from network import services as network_services
from network.models import NetworkConfiguration

pytestmark = pytest.mark.django_db

VNA = {"action": "add-vip", "vip": "VNA", "ip": "198.51.100.100",
       "ports": "12000,12100,12200,12300,12301,12950,12800", "forwarding": "masq",
       "check_type": "on", "fallback_ip": "192.0.2.120", "fallback_port": "0",
       "fallback_masq": "on"}
PRIMARY = {"action": "add-rip", "vip": "VNA", "rip": "PrimaryCluster", "ip": "192.0.2.110"}


def run(*calls, role=roles.CONFIG):
    answers, _ = lbcli.run(list(calls), "tester", role)
    return answers


def one(call, **kwargs):
    return run(call, **kwargs)[0]


def test_the_guides_service_and_real_server_are_made_with_the_guides_values(
        sent, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        answers = run(VNA, PRIMARY)
    assert [a["status"] for a in answers] == ["success", "success"]
    service = VirtualService.objects.get()
    assert (service.vip, service.ports, service.forwarding, service.check_type) == (
        "198.51.100.100", "12000,12100,12200,12300,12301,12950,12800", "nat", "on")
    assert (service.fallback_ip, service.fallback_port, service.fallback_masq) == (
        "192.0.2.120", 0, True)
    server = service.real_servers.get()
    assert (server.label, server.ip, server.port, server.weight, server.min_connections,
            server.max_connections) == ("PrimaryCluster", "192.0.2.110", None, 100, 0, 0)
    assert ConfigGeneration.current() == 1 and sent == [{}]  # one batch: one apply
    assert Revision.objects.count() == 1
    assert AuditEntry.objects.count() == 2


def test_add_vip_takes_the_commercial_defaults_where_lbadmin_has_the_feature(sent):
    assert one({"action": "add-vip", "vip": "web", "ip": "198.51.100.100", "ports": "80"})[
        "status"] == "success"
    service = VirtualService.objects.get()
    assert service.scheduler == "wlc"  # the commercial Layer 4 default
    assert service.check_type == "connect"  # its default check: connect to port
    assert service.forwarding == "nat"  # direct routing, its default, is not here
    assert not service.persistent and service.persistence_timeout == 300
    assert (service.check_interval, service.check_timeout, service.failure_count) == (30, 5, 10)


@pytest.mark.parametrize(("given", "stored"), [
    ("80", "80"), ("80:81", "80,81"), ("800-900", "800-900"),
    ("80:443,8000-8080", "80,443,8000-8080"), (" 12000 , 12100 ", "12000,12100"),
    (8080, "8080"),
])
def test_the_commercial_port_syntax_is_stored_as_lbadmins(sent, given, stored):
    assert one({"action": "add-vip", "vip": "web", "ip": "198.51.100.100", "ports": given})[
        "status"] == "success"
    assert VirtualService.objects.get().ports == stored


@pytest.mark.parametrize(("option", "value", "field", "stored"), [
    ("protocol", "tcpudp", "protocol", "tcp+udp"), ("protocol", "udp", "protocol", "udp"),
    ("scheduler", "wrr", "scheduler", "wrr"), ("persistent", "on", "persistent", True),
    ("persistent", "yes", "persistent", True), ("persist_time", "600", "persistence_timeout", 600),
    ("check_type", "ping", "check_type", "ping"), ("check_type", "off", "check_type", "off"),
    ("check_port", "12000", "check_port", 12000), ("check_vhost", "pacs.example.org",
                                                   "check_host", "pacs.example.org"),
    ("email", "pacs@example.org", "alert_address", "pacs@example.org"),
    ("fallback_masq", "off", "fallback_masq", False),
])
def test_each_vip_option_lands_in_its_field(sent, option, value, field, stored):
    run(VNA)
    assert one({"action": "edit-vip", "vip": "VNA", option: value})["status"] == "success"
    assert getattr(VirtualService.objects.get(), field) == stored


def test_negotiate_with_its_service_is_the_http_or_https_check(sent):
    run(VNA)
    assert one({"action": "edit-vip", "vip": "VNA", "check_type": "negotiate",
                "check_service": "https", "check_request": "/health",
                "check_response": "200"})["status"] == "success"
    service = VirtualService.objects.get()
    assert (service.check_type, service.check_request, service.check_expect) == (
        "https", "/health", "200")


def test_edit_vip_changes_only_what_it_names(sent):
    run(VNA)
    assert one({"action": "edit-vip", "vip": "VNA", "persistent": "on"})["status"] == "success"
    service = VirtualService.objects.get()
    assert service.persistent and service.fallback_masq and service.check_type == "on"


@pytest.mark.parametrize(("call", "words"), [
    ({"forwarding": "gate"}, "not supported: lbadmin forwards by NAT (masq) only"),
    ({"forwarding": "ipip"}, "not supported: lbadmin forwards by NAT (masq) only"),
    ({"layer": "7"}, "lbadmin is a Layer 4 load balancer"),
    ({"protocol": "fwm"}, "protocol: “fwm” is not supported"),
    ({"scheduler": "sh"}, "scheduler: “sh” is not supported"),
    ({"check_type": "sip"}, "check_type: “sip” is not supported"),
    ({"persistent": "maybe"}, "persistent: “maybe” is neither on nor off."),
    ({"ports": "70000"}, "ports: Port 70000 is outside 1–65535."),
    ({"ports": "80:80"}, "ports: “80” repeats a port already in the list."),
    ({"ip": "198.51.100.300"}, "ip: “198.51.100.300” is not an IPv4 address"),
    ({"fallback_ip": "198.51.100.100"}, "fallback_ip: The fallback server cannot be the "
                                        "virtual service's own address."),
    ({"persist_time": "0"}, "persist_time: Ensure this value is greater than or equal to 1."),
])
def test_what_lbadmin_refuses_is_failed_in_words_and_nothing_is_saved(sent, call, words):
    answer = one(VNA | call)
    assert answer["status"] == "failed"
    assert words in answer["error"]
    assert not VirtualService.objects.exists() and ConfigGeneration.current() == 0


def test_an_add_of_what_exists_is_exists_and_changes_nothing(sent):
    run(VNA, PRIMARY)
    again = run(VNA | {"ports": "80"}, PRIMARY | {"ip": "192.0.2.111"},
                {"action": "add-floating-ip", "ip": "192.0.2.254"})
    assert again[0] == {"action": "add-vip", "vip": "VNA", "ip": "198.51.100.100",
                        "status": "exists", "error": "Another virtual service has this label."}
    assert again[1]["status"] == "exists"
    assert again[1]["error"] == ("This virtual service already has a real server with this "
                                 "label.")
    assert VirtualService.objects.get().ports.startswith("12000")
    assert RealServer.objects.get().ip == "192.0.2.110"


@pytest.mark.parametrize("call", [
    {"action": "edit-vip", "vip": "nope", "ports": "80"},
    {"action": "delete-vip", "vip": "nope"},
    {"action": "add-rip", "vip": "nope", "rip": "a", "ip": "192.0.2.110"},
    {"action": "edit-rip", "vip": "VNA", "rip": "nope", "weight": "1"},
    {"action": "delete-rip", "vip": "VNA", "rip": "nope"},
    {"action": "halt", "vip": "VNA", "rip": "nope"},
    {"action": "halt", "rip": "nope", "services": "all"},
    {"action": "delete-floating-ip", "ip": "192.0.2.254"},
    {"action": "edit-vip", "vip": "VNA", "check_type": "external", "check_command": "nope"},
])
def test_what_is_not_there_is_missing(sent, call):
    run(VNA, PRIMARY)
    answer = one(call)
    assert answer["status"] == "missing", answer
    assert answer["error"]


@pytest.mark.parametrize(("call", "words"), [
    ({}, "No action"),
    ({"action": "frobnicate"}, "Unknown action “frobnicate”"),
    ({"action": "add-vip", "vip": "x", "ip": "198.51.100.1", "ports": "80", "colour": "red"},
     "add-vip takes no option --colour"),
    ({"action": "add-vip", "vip": "x"}, "add-vip needs --ip --ports"),
    ({"action": "halt", "vip": "VNA"}, "halt needs --rip"),
    ({"action": "halt", "rip": "PrimaryCluster", "services": "some"}, "--services takes only"),
    ({"action": "list", "function": "everything"}, "list --function takes virtual"),
    ({"action": "add-vip", "vip": ["a"]}, "takes a single value"),
    ({"action": "restart-frobnicator"}, "Unknown action “restart-frobnicator”"),
])
def test_a_malformed_call_is_fatal(sent, call, words):
    answer = one(call)
    assert answer["status"] == "fatal"
    assert words in answer["error"]


def test_a_failed_call_undoes_the_whole_batch_and_says_so_for_every_call(sent):
    answers = run(VNA, PRIMARY, {"action": "add-rip", "vip": "VNA", "rip": "Bad",
                                 "ip": "192.0.2.999"}, {"action": "list", "function": "virtual"})
    assert [a["status"] for a in answers] == ["failed"] * 4
    assert answers[0]["error"] == ("not saved: call 3 (add-rip) failed, so the whole batch "
                                   "was undone.")
    assert answers[2]["error"].startswith("ip: “192.0.2.999” is not an IPv4 address")
    assert answers[3]["error"] == "not run: call 3 (add-rip) failed."
    assert not VirtualService.objects.exists() and ConfigGeneration.current() == 0
    assert not AuditEntry.objects.exists() and sent == []


def test_exists_and_missing_let_the_batch_go_on_so_a_script_can_run_again(sent):
    run(VNA, PRIMARY)
    answers = run(VNA, PRIMARY, {"action": "delete-floating-ip", "ip": "192.0.2.99"},
                  {"action": "edit-rip", "vip": "VNA", "rip": "PrimaryCluster", "weight": "50"})
    assert [a["status"] for a in answers] == ["exists", "exists", "missing", "success"]
    assert RealServer.objects.get().weight == 50


def test_drain_halt_online_set_the_state(sent):
    run(VNA, PRIMARY)
    for action, state in (("drain", "drain"), ("halt", "halt"), ("online", "online")):
        assert one({"action": action, "vip": "VNA", "rip": "PrimaryCluster"})[
            "status"] == "success"
        assert RealServer.objects.get().state == state
    assert AuditEntry.objects.filter(action__contains="to Halt").exists()


def test_services_all_sets_that_real_server_in_every_service(sent):
    run(VNA, PRIMARY, {"action": "add-vip", "vip": "Other", "ip": "198.51.100.101",
                       "ports": "80"},
        PRIMARY | {"vip": "Other"}, {"action": "add-rip", "vip": "Other", "rip": "Else",
                                     "ip": "192.0.2.111"})
    answer = one({"action": "halt", "rip": "PrimaryCluster", "services": "all"})
    assert answer["status"] == "success" and answer["services"] == ["Other", "VNA"]
    assert set(RealServer.objects.filter(label="PrimaryCluster").values_list(
        "state", flat=True)) == {"halt"}
    assert RealServer.objects.get(label="Else").state == "online"
    assert ConfigGeneration.current() == 2  # the set-up, then the one halt of both


def test_edit_and_delete_of_real_servers_and_services(sent):
    run(VNA, PRIMARY)
    assert one({"action": "edit-rip", "vip": "VNA", "rip": "PrimaryCluster", "port": "8080",
                "minconns": "5", "maxconns": "10"})["status"] == "success"
    server = RealServer.objects.get()
    assert (server.port, server.min_connections, server.max_connections) == (8080, 5, 10)
    answer = one({"action": "edit-rip", "vip": "VNA", "rip": "PrimaryCluster", "minconns": "20"})
    assert answer["error"] == "minconns: The minimum cannot be above the maximum."
    assert one({"action": "delete-rip", "vip": "VNA", "rip": "PrimaryCluster"})[
        "status"] == "success"
    assert not RealServer.objects.exists()
    assert one({"action": "delete-vip", "vip": "VNA"})["status"] == "success"
    assert not VirtualService.objects.exists()


def test_floating_ips_are_added_in_a_configured_subnet_only_and_removed(sent):
    config = NetworkConfiguration.load()
    config.interfaces = {"eth0": {"addresses": ["192.0.2.1/24"]}}
    config.save()
    assert one({"action": "add-floating-ip", "ip": "192.0.2.254"})["status"] == "success"
    outside = one({"action": "add-floating-ip", "ip": "203.0.113.5"})
    assert outside["error"] == ("ip: 203.0.113.5 is outside every connected subnet: no "
                                "interface could bring it up.")
    assert one({"action": "list", "function": "floatingip"})["data"] == ["192.0.2.254"]
    assert one({"action": "delete-floating-ip", "ip": "192.0.2.254"})["status"] == "success"
    assert not FloatingIP.objects.exists()


def test_list_virtual_and_dumpconfig(sent):
    run(VNA, PRIMARY)
    listing = one({"action": "list", "function": "virtual"})["data"]
    assert listing[0]["vip"] == "VNA" and listing[0]["forwarding"] == "masq"
    assert listing[0]["rips"][0]["rip"] == "PrimaryCluster"
    dump = one({"action": "list", "function": "dumpconfig"})["data"]
    assert dump.startswith("<?xml") or dump.startswith("<lbadmin-backup")
    assert "PrimaryCluster" in dump
    assert AuditEntry.objects.filter(action__startswith="downloaded a backup").exists()


def test_hostname_and_dns_go_through_the_pages_form_and_write_the_files_after_commit(
        sent, monkeypatch, django_capture_on_commit_callbacks):
    written = []
    monkeypatch.setattr(lbcli, "ask_dataplane", lambda task, **kwargs: written.append(kwargs))
    monkeypatch.setattr(network_services, "refresh_snmp", lambda *args, **kwargs: "")
    with django_capture_on_commit_callbacks(execute=True):
        assert one({"action": "hostname", "hostname": "lb1"})["status"] == "success"
        assert one({"action": "dns", "dns1": "192.0.2.53", "dns2": "192.0.2.54"})[
            "status"] == "success"
    stored = NetworkConfiguration.load()
    assert (stored.hostname, stored.dns) == ("lb1", ["192.0.2.53", "192.0.2.54"])
    assert written[-1] == {"hostname": "lb1", "dns": ["192.0.2.53", "192.0.2.54"]}
    bad = one({"action": "hostname", "hostname": "-lb"})
    assert bad["status"] == "failed" and bad["error"].startswith("hostname: A hostname is")


def test_restart_and_reload(monkeypatch, django_capture_on_commit_callbacks):
    asked = []
    monkeypatch.setattr(restarts, "request_restart", lambda names, user: asked.extend(names))
    with django_capture_on_commit_callbacks(execute=True):
        answers = run({"action": "reload-ldirectord"}, {"action": "restart-ldirectord"},
                      {"action": "restart-heartbeat"}, {"action": "restart-snmpd"})
    assert answers[0]["status"] == "success"
    assert answers[0]["message"].startswith("nothing to reload: changes are live")
    assert asked == ["worker-checks", "keepalived", "snmpd"]
    haproxy = one({"action": "reload-haproxy"})
    assert haproxy["status"] == "failed" and "lbadmin has no HAProxy" in haproxy["error"]


def test_a_role_that_may_not_is_refused_before_anything_runs(sent):
    answers, refused = lbcli.run([{"action": "list", "function": "virtual"}, VNA], "reader",
                                 roles.REPORT)
    assert refused
    assert answers[1]["status"] == "failed"
    assert answers[1]["error"].startswith("Your role, report: read only, may not do this")
    assert answers[0]["error"].startswith("not run")
    assert not VirtualService.objects.exists()


def test_maint_may_halt_but_not_add(sent):
    run(VNA, PRIMARY)
    assert one({"action": "halt", "vip": "VNA", "rip": "PrimaryCluster"},
               role=roles.MAINT)["status"] == "success"
    _, refused = lbcli.run([VNA | {"vip": "Other"}], "m", roles.MAINT)
    assert refused


@pytest.mark.parametrize(("argv", "call"), [
    (["--action", "halt", "--vip", "VNA", "--rip", "Primary Cluster"],
     {"action": "halt", "vip": "VNA", "rip": "Primary Cluster"}),
    (["--action=list", "--function=virtual"], {"action": "list", "function": "virtual"}),
    (["--action", "dns", "--dns1"], {"action": "dns", "dns1": ""}),
])
def test_the_command_line_is_parsed_as_options_and_values(argv, call):
    assert lbcli_command.parse(argv) == call


def test_a_stray_word_on_the_command_line_is_refused():
    with pytest.raises(ValueError, match="is not an option"):
        lbcli_command.parse(["halt"])


def test_the_command_prints_api_v2s_json_and_exits_by_status(sent):
    out = io.StringIO()
    assert lbcli_command.run(["--action", "add-vip", "--vip", "VNA", "--ip", "198.51.100.100",
                              "--ports", "80"], out=out) == 0
    printed = json.loads(out.getvalue())
    assert printed["lbapi"][0]["itteration"][0]["lbcli"][0]["status"] == "success"
    assert AuditEntry.objects.get().user.startswith("lbcli (")
    assert lbcli_command.run(["--action", "add-vip", "--vip", "VNA", "--ip", "198.51.100.100",
                              "--ports", "80"], out=io.StringIO()) == 0  # exists
    assert lbcli_command.run(["--action", "edit-vip", "--vip", "VNA", "--ports", "0"],
                             out=io.StringIO()) == 1
    assert lbcli_command.run(["--action", "nope"], out=io.StringIO()) == 2


def test_a_secondary_of_a_pair_takes_halt_drain_online_for_the_primary_and_no_change(
        sent, monkeypatch, django_capture_on_commit_callbacks):
    told = []
    monkeypatch.setattr(lbcli.catch_up, "apply_async", lambda *a, **k: told.append(1))
    run(VNA, PRIMARY)
    Pair.objects.update_or_create(pk=1, defaults={"role": Pair.Role.SECONDARY,
                                                  "peer_ip": "192.0.2.2"})
    with django_capture_on_commit_callbacks(execute=True):
        answers = run({"action": "list", "function": "virtual"},
                      {"action": "halt", "vip": "VNA", "rip": "PrimaryCluster"})
    assert [a["status"] for a in answers] == ["success", "success"]
    assert RealServer.objects.get().state == "halt"
    assert PendingAction.objects.get().state == "halt" and told == [1]
    refused = one({"action": "edit-vip", "vip": "VNA", "ports": "80"})
    assert refused["status"] == "failed"
    assert refused["error"].startswith("Not changed: This appliance is the Secondary")


def test_a_read_before_a_failed_call_answers_nothing_either(sent):
    run(VNA)
    answers = run({"action": "list", "function": "dumpconfig"},
                  {"action": "edit-vip", "vip": "VNA", "ports": "0"})
    assert answers[0]["status"] == "failed" and "data" not in answers[0]
    assert not AuditEntry.objects.filter(action__startswith="downloaded a backup").exists()


# -- interface: Network Interface Configuration (the guide's 6.1.1) ---------------------------

LIVE = [
    {"name": "lo", "kind": "", "mtu": 65536, "addresses": ["127.0.0.1/8"],
     "marked": [{"cidr": "127.0.0.1/8", "role": ""}]},
    {"name": "eth0", "kind": "veth", "mtu": 1500, "addresses": ["192.0.2.1/24"],
     "marked": [{"cidr": "192.0.2.1/24", "role": ""}]},
    {"name": "eth1", "kind": "veth", "mtu": 1500, "addresses": [], "marked": []},
]
ETH1 = {"action": "interface", "interface": "eth1", "ip": "198.51.100.1/24"}


@pytest.fixture
def network_worker(monkeypatch, sent):
    """The dataplane worker reads LIVE and takes every network change (the configs it was
    given are recorded); the kernel side is tests/netns/test_api_v2.py's."""
    applied = []
    monkeypatch.setattr(network_services, "live_interfaces", lambda: (LIVE, ""))
    monkeypatch.setattr(network_services, "ask_dataplane",
                        lambda task, **kwargs: applied.append(kwargs["config"]) or {"ok": True})
    return applied


def stored_addresses():
    return {name: settings["addresses"]
            for name, settings in NetworkConfiguration.load().interfaces.items()}


def test_interface_sets_the_addresses_through_the_pages_form_and_action(network_worker):
    answer = one(ETH1 | {"ip": "198.51.100.1/24, 2001:db8::1/64"})
    assert answer["status"] == "success" and answer["interface"] == "eth1"
    # the other interfaces keep what the page shows them with
    assert stored_addresses() == {"eth0": ["192.0.2.1/24"],
                                  "eth1": ["198.51.100.1/24", "2001:db8::1/64"]}
    assert network_worker[0]["interfaces"]["eth1"]["addresses"] == [
        "198.51.100.1/24", "2001:db8::1/64"]
    assert AuditEntry.objects.filter(action__contains="configured the network").exists()


def test_interface_sets_the_mtu_alone_and_an_empty_ip_removes_the_addresses(network_worker):
    assert one(ETH1)["status"] == "success"
    assert one({"action": "interface", "interface": "eth1", "mtu": "9000"})["status"] == \
        "success"
    assert NetworkConfiguration.load().interfaces["eth1"] == {
        "addresses": ["198.51.100.1/24"], "mtu": 9000}
    assert one({"action": "interface", "interface": "eth1", "ip": ""})["status"] == "success"
    assert stored_addresses()["eth1"] == []


@pytest.mark.parametrize(("call", "words"), [
    (ETH1 | {"ip": "198.51.100.1"},
     "ip: “198.51.100.1”: give the address in CIDR form, e.g. 198.51.100.1/24."),
    (ETH1 | {"ip": "198.51.100.300/24"}, "ip: “198.51.100.300/24” is not an address in CIDR "
                                         "form."),
    (ETH1 | {"ip": "192.0.2.1/24"}, "ip: 192.0.2.1 is already on eth0."),
    (ETH1 | {"mtu": "20"}, "mtu: The MTU must be between 68 and 9216."),
    (ETH1 | {"interface": "eth9"}, "“eth9” is not an interface of this appliance: eth0, eth1."),
])
def test_interface_refusals_are_failed_in_the_forms_words_and_change_nothing(
        network_worker, call, words):
    answer = one(call)
    assert (answer["status"], answer["error"]) == ("failed", words)
    assert network_worker == [] and NetworkConfiguration.load().interfaces == {}


def test_an_interface_call_without_ip_or_mtu_or_with_other_options_is_fatal(network_worker):
    assert one({"action": "interface", "interface": "eth1"})["status"] == "fatal"
    assert one({"action": "interface", "ip": "198.51.100.1/24"})["status"] == "fatal"
    assert one(ETH1 | {"vip": "VNA"})["error"] == "interface takes no option --vip."


def test_a_change_the_lockout_guard_would_hold_is_refused_with_words(network_worker):
    """The guard holds a change that leaves a server's subnet without an address (or removes
    the address the call came to) until someone confirms it from the WebUI: over the API it
    is refused instead, before the kernel is asked."""
    assert [a["status"] for a in run(VNA, PRIMARY)] == ["success", "success"]
    stored = NetworkConfiguration.load()
    stored.interfaces = {"eth0": {"addresses": ["192.0.2.1/24"], "mtu": None},
                         "eth1": {"addresses": ["198.51.100.1/24"], "mtu": None}}
    stored.save()
    cut = one({"action": "interface", "interface": "eth0", "ip": ""})
    assert cut["status"] == "failed"
    assert cut["error"].startswith("This change removes every address of 192.0.2.0/24 "
                                   "from eth0: ")
    assert "(192.0.2.110)" in cut["error"] and "(192.0.2.120)" in cut["error"]
    assert cut["error"].endswith(lbcli.HELD_IN_THE_WEBUI)
    answers, _ = lbcli.run([ETH1 | {"ip": "198.51.100.2/24"}], "tester", roles.CONFIG,
                           arrived_on="198.51.100.1")
    assert answers[0]["status"] == "failed"
    assert "This change removes 198.51.100.1, the address this call reached the appliance " \
           "at." in answers[0]["error"]
    assert network_worker == [] and stored_addresses()["eth1"] == ["198.51.100.1/24"]
    # from lbcli on the appliance (no address came to), that change is made
    assert one(ETH1 | {"ip": "198.51.100.2/24"})["status"] == "success"


def test_interface_calls_run_first_and_alone_then_the_batch(
        network_worker, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        answers = run(ETH1, VNA, PRIMARY)
    assert [a["status"] for a in answers] == ["success"] * 3
    assert stored_addresses()["eth1"] == ["198.51.100.1/24"]
    assert VirtualService.objects.get().real_servers.count() == 1
    assert Revision.objects.count() == 2  # the network change's, then the batch's


def test_a_failed_interface_call_stops_the_batch_before_it_starts(network_worker):
    answers = run(ETH1 | {"ip": "bad"}, VNA)
    assert [a["status"] for a in answers] == ["failed", "failed"]
    assert answers[1]["error"] == "not run: call 1 (interface) failed."
    assert not VirtualService.objects.exists() and network_worker == []


def test_the_network_change_stays_when_the_batch_after_it_fails(network_worker):
    answers = run(ETH1, VNA | {"ports": "nope"})
    assert [a["status"] for a in answers] == ["success", "failed"]
    assert stored_addresses()["eth1"] == ["198.51.100.1/24"]  # the kernel has it too
    assert not VirtualService.objects.exists()


def test_an_interface_call_after_another_call_is_refused_and_undoes_the_batch(network_worker):
    answers = run(VNA, ETH1)
    assert [a["status"] for a in answers] == ["failed", "failed"]
    assert answers[1]["error"] == lbcli.NETWORK_FIRST
    assert answers[0]["error"].startswith("not saved")
    assert network_worker == [] and not VirtualService.objects.exists()


def test_only_the_config_role_may_configure_interfaces(network_worker):
    assert lbcli.ACCESS["interface"] == ("local:interfaces", "POST", None)
    for role in (roles.MAINT, roles.REPORT):
        answers, refused = lbcli.run([ETH1], "someone", role)
        assert refused and answers[0]["status"] == "failed"
        assert answers[0]["error"] == roles.refusal(role, "local:interfaces", "POST")
    assert network_worker == []


def test_the_command_line_sets_an_interface(network_worker):
    argv = ["--action", "interface", "--interface", "eth1", "--ip",
            "198.51.100.1/24,2001:db8::1/64"]
    assert lbcli_command.parse(argv) == {"action": "interface", "interface": "eth1",
                                         "ip": "198.51.100.1/24,2001:db8::1/64"}
    out = io.StringIO()
    assert lbcli_command.run(argv, out=out) == 0
    answer = json.loads(out.getvalue())["lbapi"][0]["itteration"][0]["lbcli"][0]
    assert answer == {"action": "interface", "interface": "eth1",
                      "ip": "198.51.100.1/24,2001:db8::1/64", "status": "success"}
    assert stored_addresses()["eth1"] == ["198.51.100.1/24", "2001:db8::1/64"]
