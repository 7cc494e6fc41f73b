"""Local Configuration › SNMP Configuration: snmpd.conf rendering (v2c from one network, v3
authPriv), the settings' rules and secrets, the save action, lbadmin's subtree in OID order
with GET and GETNEXT over pass_persist's protocol, and how the Stack runs snmpd."""

import io
import os
import stat

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse

from clusters.models import RealServer, VirtualService
from clusters.status import ServerRow, ServiceRow
from core.models import AuditEntry
from network import services, snmpd
from network.models import SnmpSettings
from network.snmp import SnmpForm
from reports import snmp_mib
from reports.archive import Scrubber
from reports.snmp_agent import Agent
from runner import stack as stack_module
from runner.stack import Stack

B = snmp_mib.BASE
COMMAND = ["/usr/bin/setpriv", "--inh-caps=-all", "--ambient-caps=-all", "--", "/venv/python",
           "-m", "reports.snmp_agent"]
V2C = dict(enabled=True, v2c_enabled=True, community="c0mmunity-x",
           source_network="198.51.100.0/24")
V3 = dict(enabled=True, v3_enabled=True, v3_user="monitor", auth_protocol="SHA-256",
          auth_passphrase="auth pass phrase", priv_protocol="AES",
          priv_passphrase="priv-pass-phrase")


def test_v2c_answers_one_network_with_its_community_in_lbadmins_view_only():
    text = snmpd.render_snmpd_conf(SnmpSettings(**V2C, location="Rack 4", contact="ops@x"),
                                   "lb1", COMMAND)
    lines = text.splitlines()
    assert "agentAddress udp:161" in lines
    assert "sysName lb1" in lines and "sysLocation Rack 4" in lines
    assert "sysContact ops@x" in lines
    assert "com2sec lbadmin-v2c 198.51.100.0/24 c0mmunity-x" in lines
    assert "group lbadmin-v2c v2c lbadmin-v2c" in lines
    assert 'access lbadmin-v2c "" v2c noauth exact lbadmin none none' in lines
    assert "view lbadmin included .1.3.6.1.2.1.1" in lines
    assert "view lbadmin included .1.3.6.1.4.1.8072.9999.9999" in lines
    # not every process's command line (hrSWRun), not every TCP connection
    assert not any(line.startswith("view") and (".1.3.6.1.2.1.25.4" in line
                                                or line.endswith(".1.3.6.1.2.1.6"))
                   for line in lines)
    assert lines[-1] == ("pass_persist .1.3.6.1.4.1.8072.9999.9999 /usr/bin/setpriv "
                         "--inh-caps=-all --ambient-caps=-all -- /venv/python -m "
                         "reports.snmp_agent")
    assert "createUser" not in text and "rocommunity" not in text


def test_v3_is_one_authpriv_user_with_its_passphrases_quoted():
    text = snmpd.render_snmpd_conf(SnmpSettings(**V3), "lb1", COMMAND)
    lines = text.splitlines()
    assert 'createUser monitor SHA-256 "auth pass phrase" AES "priv-pass-phrase"' in lines
    assert "rouser monitor priv -V lbadmin" in lines
    assert "com2sec" not in text


@pytest.mark.parametrize("changed", [{"location": "x\nrwcommunity open"},
                                     {"contact": "x\rrocommunity open"}])
def test_the_renderer_refuses_a_value_that_would_start_a_line(changed):
    with pytest.raises(ValueError, match="line break"):
        snmpd.render_snmpd_conf(SnmpSettings(**V2C, **changed), "lb1", COMMAND)


def test_the_agents_command_drops_snmpds_capability_and_runs_this_python():
    command = snmpd.agent_command()
    assert command[1:4] == ["--inh-caps=-all", "--ambient-caps=-all", "--"]
    assert command[-2:] == ["-m", "reports.snmp_agent"]


# ---- the rules ---------------------------------------------------------------------------

def form(data, instance=None):
    return SnmpForm({"auth_protocol": "SHA-256", "priv_protocol": "AES", **data},
                    instance=instance or SnmpSettings.load())


@pytest.mark.django_db
@pytest.mark.parametrize(("data", "field", "words"), [
    ({**V2C, "source_network": "198.51.100.7/24"}, "source_network", "host bits set"),
    ({**V2C, "source_network": "nowhere"}, "source_network", "not an IPv4 network"),
    ({**V2C, "source_network": "2001:db8::/32"}, "source_network", "not an IPv4 network"),
    ({**V2C, "source_network": ""}, "source_network", "Enter the network"),
    ({**V2C, "community": "public"}, "community", "8 to 32"),
    ({**V2C, "community": "has space 123"}, "community", "no space"),
    ({**V3, "auth_passphrase": "short"}, "auth_passphrase", "8 to 64"),
    ({**V3, "priv_passphrase": 'quote"inside'}, "priv_passphrase", "no \""),
    ({**V3, "priv_passphrase": ""}, "priv_passphrase", "Enter a passphrase"),
    ({**V3, "v3_user": "bad user"}, "v3_user", "letters, digits"),
    ({**V3, "auth_protocol": "MD5"}, "auth_protocol", "not one of the available"),
    ({"enabled": True}, "enabled", "Choose SNMP v2c, SNMP v3 or both"),
    ({**V2C, "location": "two\nlines"}, "location", "one line"),
])
def test_what_snmpd_could_not_take_is_refused_next_to_its_field(data, field, words):
    bound = form(data)
    assert not bound.is_valid()
    assert words in " ".join(bound.errors[field]), bound.errors


@pytest.mark.django_db
def test_a_single_host_is_taken_as_its_own_network():
    bound = form({**V2C, "source_network": "198.51.100.10"})
    assert bound.is_valid(), bound.errors
    assert bound.cleaned_data["source_network"] == "198.51.100.10/32"


@pytest.fixture
def supervisor(monkeypatch, settings, tmp_path):
    asked = []
    monkeypatch.setattr(snmpd, "ask_supervisor", asked.append)
    settings.DATA_DIR = tmp_path
    return asked


@pytest.mark.django_db
def test_saving_writes_snmpd_conf_0600_and_restarts_snmpd(supervisor, tmp_path):
    bound = form({**V2C, **V3})
    assert bound.is_valid(), bound.errors
    assert services.do_save_snmp(bound.save(commit=False), "tester") == ""
    conf = tmp_path / "snmp" / "snmpd.conf"
    assert stat.S_IMODE(conf.stat().st_mode) == 0o600
    assert "com2sec lbadmin-v2c 198.51.100.0/24 c0mmunity-x" in conf.read_text()
    assert "sysName lbadmin" in conf.read_text()  # the stored hostname
    assert supervisor == [{"restart": "snmpd", "by": "tester"}]
    words = AuditEntry.objects.latest("id").action
    assert words == ("set SNMP: on, v2c from 198.51.100.0/24 and v3 user monitor (SHA-256, "
                     "AES)")
    assert not any(secret in words for secret in SnmpSettings.load().secrets())


@pytest.mark.django_db
def test_turning_snmp_off_removes_the_configuration_and_stops_snmpd(supervisor, tmp_path):
    services.do_save_snmp(SnmpSettings(**V2C), "tester")
    services.do_save_snmp(SnmpSettings(**{**V2C, "enabled": False}), "tester")
    assert not (tmp_path / "snmp" / "snmpd.conf").exists()
    assert supervisor[-1] == {"stop": "snmpd", "by": "tester"}


@pytest.mark.django_db
def test_a_blank_secret_keeps_the_saved_one(supervisor):
    services.do_save_snmp(SnmpSettings(**V2C, **{k: v for k, v in V3.items()
                                                 if k != "enabled"}), "tester")
    bound = form({**V2C, **V3, "community": "", "auth_passphrase": "", "priv_passphrase": "",
                  "location": "Rack 5"})
    assert bound.is_valid(), bound.errors
    services.do_save_snmp(bound.save(commit=False), "tester")
    saved = SnmpSettings.load()
    assert (saved.community, saved.auth_passphrase, saved.location) == \
        ("c0mmunity-x", "auth pass phrase", "Rack 5")


@pytest.mark.django_db
def test_a_new_hostname_becomes_sysname_at_once(browser, supervisor, tmp_path, settings):
    settings.REDIS_URL = f"unix://{tmp_path}/nothing.sock"  # no worker: resolv.conf waits
    services.do_save_snmp(SnmpSettings(**V2C), "tester")
    token = browser.get(reverse("local:hostname-dns")).cookies["lbadmin_csrftoken"].value
    browser.post(reverse("local:hostname-dns"), {"hostname": "lb-east"},
                 HTTP_X_CSRFTOKEN=token)
    assert "sysName lb-east" in (tmp_path / "snmp" / "snmpd.conf").read_text()
    assert supervisor[-1]["restart"] == "snmpd"


@pytest.mark.django_db
def test_a_missing_supervisor_is_told_and_the_settings_are_saved(settings, tmp_path,
                                                                 monkeypatch):
    settings.DATA_DIR = tmp_path

    def no_supervisor(request):
        raise services.WorkerUnavailable("no supervisor is running")

    monkeypatch.setattr(snmpd, "ask_supervisor", no_supervisor)
    problem = services.do_save_snmp(SnmpSettings(**V2C), "tester")
    assert problem == "snmpd could not be restarted: no supervisor is running"
    assert SnmpSettings.load().enabled


@pytest.mark.django_db
def test_the_support_download_removes_snmps_secrets(supervisor):
    services.do_save_snmp(SnmpSettings(**V2C, **{k: v for k, v in V3.items()
                                                 if k != "enabled"}), "tester")
    scrubbed = Scrubber()("community c0mmunity-x auth 'auth pass phrase' priv-pass-phrase")
    assert "c0mmunity-x" not in scrubbed and "auth pass phrase" not in scrubbed
    assert "priv-pass-phrase" not in scrubbed


@pytest.fixture
def browser():
    user = get_user_model().objects.create_user("loadbalancer", password="a-Long-test-pass")
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    return client


def post(browser, data):
    token = browser.get(reverse("local:snmp")).cookies["lbadmin_csrftoken"].value
    return browser.post(reverse("local:snmp"), {"auth_protocol": "SHA-256",
                                                "priv_protocol": "AES", **data},
                        HTTP_X_CSRFTOKEN=token)


@pytest.mark.django_db
def test_the_page_never_sends_a_secret_back(browser, supervisor):
    response = post(browser, {**V2C, **V3})
    assert response.status_code == 302
    page = browser.get(reverse("local:snmp")).content.decode()
    assert "c0mmunity-x" not in page and "auth pass phrase" not in page
    assert "priv-pass-phrase" not in page
    assert "Saved (hidden)" in page and 'value="198.51.100.0/24"' in page


@pytest.mark.django_db
def test_a_refused_save_keeps_nothing_and_escapes_what_was_typed(browser, supervisor):
    response = post(browser, {**V2C, "source_network": "<b>nowhere</b>"})
    assert response.status_code == 200
    assert "&lt;b&gt;nowhere&lt;/b&gt;” is not an IPv4 network" in response.content.decode()
    assert not SnmpSettings.objects.exists() and supervisor == []


# ---- lbadmin's subtree -------------------------------------------------------------------

def rows():
    """Two services (ids 2 and 10: 10 sorts after 2 by number, before it as text) with real
    servers, as System Overview's rows."""
    web = VirtualService(id=2, label="Web", vip="198.51.100.100", ports="80,443",
                         fallback_ip="192.0.2.120")
    dicom = VirtualService(id=10, label="VNA", vip="198.51.100.101", ports="104")
    servers = [RealServer(id=3, service=web, label="Primary", ip="192.0.2.110", weight=100),
               RealServer(id=11, service=web, label="Secondary", ip="192.0.2.111", weight=0,
                          state="drain"),
               RealServer(id=4, service=dicom, label="Archive", ip="192.0.2.112", port=11112)]
    server_rows = [ServerRow(s, 0, css, words, str(s.weight), False, health=health)
                   for s, css, words, health in zip(servers, ("up", "drain", "down"), (
                       "Online", "Online (drain)", "Down (health check failed)"),
                       ("up", "up", "down"), strict=True)]
    return [ServiceRow(web, 0, "up", "Online", server_rows[:2]),
            ServiceRow(dicom, 0, "down", "Fallback server in use", server_rows[2:])]


STATES = {3: {"active": 5, "inactive": 2}, 11: {"active": 1, "inactive": 0},
          0x40000000 | 2: {"active": 0, "inactive": 0}}


def walk(tree, start=B):
    found, oid = [], start
    while (entry := tree.next(oid)) is not None and entry[0][:len(start)] == start:
        found.append(entry)
        oid = entry[0]
    return found


def test_a_walk_visits_every_value_once_in_snmps_order():
    tree = snmp_mib.build_tree(rows()[::-1], STATES, 1_800_000_000.5, "")
    walked = walk(tree)
    assert len(walked) == len(tree.entries) == 4 + 2 * 11 + 3 * 12
    oids = [oid for oid, _kind, _value in walked]
    assert oids == sorted(oids) and len(set(oids)) == len(oids)
    # column by column, and within a column service 2 before service 10
    assert oids[4:6] == [(*B, 2, 1, 1, 2), (*B, 2, 1, 1, 10)]
    assert (*B, 3, 1, 3, 2, 3) in oids and (*B, 3, 1, 3, 10, 4) in oids
    assert oids.index((*B, 3, 1, 3, 2, 11)) < oids.index((*B, 3, 1, 3, 10, 4))


def test_the_values_are_what_layer4_status_shows():
    tree = snmp_mib.build_tree(rows(), STATES, 1_800_000_000.5, "")
    value = {oid: (kind, text) for oid, kind, text in tree.entries}
    assert value[(*B, 1, 1, 0)] == ("gauge", "2")
    assert value[(*B, 1, 2, 0)] == ("gauge", "3")
    assert value[(*B, 1, 3, 0)] == ("gauge", "1800000000")
    assert value[(*B, 1, 4, 0)] == ("string", "")
    assert value[(*B, 2, 1, 2, 2)] == ("string", "Web")
    assert value[(*B, 2, 1, 3, 2)] == ("string", "198.51.100.100")
    assert value[(*B, 2, 1, 4, 2)] == ("string", "80,443")
    assert value[(*B, 2, 1, 6, 10)] == ("integer", "5")  # down
    assert value[(*B, 2, 1, 7, 10)] == ("string", "Fallback server in use")
    assert value[(*B, 2, 1, 8, 2)] == ("gauge", "6")  # both servers' active connections
    assert value[(*B, 2, 1, 9, 2)] == ("gauge", "2")
    assert value[(*B, 3, 1, 3, 2, 3)] == ("string", "Primary")
    assert value[(*B, 3, 1, 5, 10, 4)] == ("string", "11112")
    assert value[(*B, 3, 1, 5, 2, 3)] == ("string", "80,443")  # the service's ports
    assert value[(*B, 3, 1, 6, 2, 11)] == ("integer", "0")
    assert value[(*B, 3, 1, 7, 2, 11)] == ("integer", "2")  # drain
    assert value[(*B, 3, 1, 9, 10, 4)] == ("string", "Down (health check failed)")
    assert value[(*B, 3, 1, 10, 10, 4)] == ("string", "down")
    assert value[(*B, 3, 1, 11, 2, 3)] == ("gauge", "5")
    assert value[(*B, 3, 1, 12, 2, 3)] == ("gauge", "2")


def test_unknown_counts_are_left_out_and_the_reason_given():
    tree = snmp_mib.build_tree(rows(), None, 0, "Redis is down (refused)")
    assert tree.get((*B, 3, 1, 11, 2, 3)) is None and tree.get((*B, 2, 1, 8, 2)) is None
    assert tree.get((*B, 3, 1, 3, 2, 3)) is not None
    assert tree.get((*B, 1, 4, 0))[2] == "Redis is down (refused)"


def test_get_answers_only_an_exact_oid_and_getnext_goes_past_the_end_to_none():
    tree = snmp_mib.build_tree(rows(), STATES, 0, "")
    assert tree.get((*B, 2, 1, 2)) is None  # a column, not a value
    assert tree.next((*B, 2, 1, 2))[0] == (*B, 2, 1, 2, 2)
    assert tree.next((1, 3, 6))[0] == (*B, 1, 1, 0)
    assert tree.next((*B, 3, 1, 12, 10, 4)) is None
    assert tree.next((*B, 4)) is None


@pytest.mark.parametrize(("text", "oid"), [
    (".1.3.6.1.4.1\n", (1, 3, 6, 1, 4, 1)), ("1.3.6", (1, 3, 6)), ("", None),
    (".1.x.3", None), (".1.-3", None), (f".1.{2**32}", None),
])
def test_oids_are_read_as_numbers(text, oid):
    assert snmp_mib.parse_oid(text) == oid


def test_a_label_is_one_line_and_a_count_stays_in_gauge32():
    assert snmp_mib._value("string", "a\nb\r\nc") == "a b c"
    assert snmp_mib._value("string", "x" * 300) == "x" * 255
    assert snmp_mib._value("gauge", 2**40) == str(2**32 - 1)


def agent(clock=None):
    made = []

    def make_tree():
        made.append(1)
        return snmp_mib.build_tree(rows(), STATES, 0, "")

    times = iter(clock or [0.0] * 100)
    return Agent(make_tree, snmp_mib.parse_oid, snmp_mib.format_oid, cache_seconds=1.5,
                 clock=lambda: next(times)), made


def test_the_agent_speaks_pass_persist():
    served, _made = agent()
    requests = io.StringIO(
        "PING\n"
        f"get\n{snmp_mib.format_oid((*B, 2, 1, 3, 2))}\n"
        f"getnext\n{snmp_mib.format_oid((*B, 2, 1, 2, 2))}\n"
        f"get\n{snmp_mib.format_oid((*B, 9))}\n"
        f"set\n{snmp_mib.format_oid((*B, 2, 1, 2, 2))}\nstring x\n"
        "getnext\nnot-an-oid\n")
    answers = io.StringIO()
    served.serve(requests, answers)
    base = snmp_mib.format_oid(B)
    assert answers.getvalue().splitlines() == [
        "PONG",
        f"{base}.2.1.3.2", "string", "198.51.100.100",
        f"{base}.2.1.2.10", "string", "VNA",  # the next: service 10 after 2
        "NONE", "not-writable", "NONE"]


def test_a_walk_reads_the_appliance_once_per_snapshot():
    served, made = agent(clock=[0.0, 0.5, 1.0, 1.6, 1.7])
    for _ in range(5):
        served.answer("getnext", snmp_mib.format_oid(B))
    assert len(made) == 2  # at 0.0 and 1.6


def test_a_failing_read_answers_none_and_the_agent_goes_on():
    def broken():
        raise OSError("database is locked")

    served = Agent(broken, snmp_mib.parse_oid, snmp_mib.format_oid)
    assert served.answer("getnext", ".1.3") == ["NONE"]


# ---- the Stack ---------------------------------------------------------------------------

def test_snmpd_runs_only_where_snmp_is_enabled_with_net_bind_service_only(tmp_path,
                                                                        monkeypatch):
    stack = Stack(tmp_path)
    spawned = []
    monkeypatch.setattr(stack, "_spawn", lambda name, command, **kw: spawned.append(
        (name, command, kw)))
    assert not stack.snmp_configured()
    with pytest.raises(stack_module.StartError, match="SNMP is not enabled"):
        stack.start_snmpd()
    (tmp_path / "snmp").mkdir()
    (tmp_path / "snmp" / "snmpd.conf").write_text("agentAddress udp:161\n")
    (tmp_path / "snmp" / "persist").mkdir()
    (tmp_path / "snmp" / "persist" / "snmpd.conf").write_text("usmUser old keys\n")
    stack.start_snmpd()
    name, command, kw = spawned[0]
    assert name == "snmpd" and kw["in_lab"]
    assert command == ["snmpd", "-f", "-LOn", "-C", "-c", str(tmp_path / "snmp/snmpd.conf")]
    assert kw["env"] == {"SNMP_PERSISTENT_DIR": str(tmp_path / "snmp/persist"), "MIBS": ":"}
    assert not (tmp_path / "snmp" / "persist" / "snmpd.conf").exists()
    assert stack_module.CAPABILITIES["snmpd"] == ("net_bind_service",)
    assert stack.describe()["services"]["snmpd"]["configured"]
    os.unlink(tmp_path / "snmp" / "snmpd.conf")
    assert not stack.describe()["services"]["snmpd"]["configured"]
