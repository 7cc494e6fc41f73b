"""Local Configuration › System Date & time: chrony.conf rendering, the NTP servers' and time
zone's rules, chronyc's CSV read back (output recorded from chrony 4.3), the save action and
the page, and how the Stack runs chronyd."""

import zoneinfo
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from network import chrony, date_time
from network.date_time import DateTimeForm, clean_ntp_server, do_save_date_time
from network.models import DateTimeSettings
from runner import stack as stack_module
from runner.stack import Stack

# chronyc -c tracking / sources, recorded from chronyd 4.3 following the lab's NTP server
TRACKING_SYNCED = ("C000027B,192.0.2.123,9,1795870603.973345690,-0.000003487,0.000000364,"
                   "0.000000484,0.050,0.015,1.330,0.000012500,0.000001184,1.0,Normal\n")
SOURCES_SYNCED = "^,*,192.0.2.123,8,0,177,0,0.000000189,0.000000553,0.000006285\n"
# ... and following two addresses nothing answers on
TRACKING_UNSYNCED = ("00000000,,0,0.000000000,0.000000000,0.000000000,0.000000000,0.000,0.000,"
                     "0.000,1.000000000,1.000000000,0.0,Not synchronised\n")
SOURCES_UNSYNCED = ("^,?,192.0.2.99,0,6,0,4294967295,0.000000000,0.000000000,0.000000000\n"
                    "^,?,192.0.2.98,0,6,0,4294967295,0.000000000,0.000000000,0.000000000\n")

EXPECTED_CONF = """\
# Written by lbadmin (Local Configuration > System Date & time): a save there replaces it.
server ntp.example.org iburst
server 192.0.2.123 iburst
makestep 1 3
rtcsync
port 0
cmdport 0
bindcmdaddress /data/chrony/chronyd.sock
pidfile /data/chrony/chronyd.pid
driftfile /data/chrony/chronyd.drift
"""


def test_the_configuration_names_each_server_and_keeps_chronyds_files_in_the_data_directory():
    assert chrony.render(["ntp.example.org", "192.0.2.123"], Path("/data/chrony")) == \
        EXPECTED_CONF


@pytest.mark.parametrize("server", ["a b", "x\nserver evil", "host#1", ""])
def test_the_renderer_refuses_what_would_change_a_lines_meaning(server):
    with pytest.raises(ValueError, match="cannot be written"):
        chrony.render([server], Path("/data/chrony"))


def test_the_renderer_refuses_a_socket_path_too_long_for_a_unix_socket():
    with pytest.raises(ValueError, match="too long"):
        chrony.render(["192.0.2.123"], Path("/" + "d" * 90))


@pytest.mark.parametrize(("given", "stored"), [
    ("ntp.example.org", "ntp.example.org"),
    ("  NTP1.Example.ORG ", "ntp1.example.org"),
    ("pool", "pool"),
    ("192.0.2.123", "192.0.2.123"),
    ("2001:DB8::1", "2001:db8::1"),
])
def test_a_host_name_or_an_address_is_taken(given, stored):
    assert clean_ntp_server(given) == stored


@pytest.mark.parametrize(("given", "words"), [
    ("ntp example.org", "has a space"),
    ("192.0.2.300", "not a valid IPv4 address"),
    ("1.2.3", "not a valid IPv4 address"),
    ("-ntp.example.org", "not a host name or an IP address"),
    ("ntp_1.example.org", "not a host name or an IP address"),
    ("ntp.example.org;reboot", "not a host name or an IP address"),
    ("127.0.0.1", "loopback"),
    ("0.0.0.0", "unspecified"),
    ("224.0.1.1", "multicast"),
    ("fe80::1", "link-local"),
    ("a" * 64 + ".example.org", "not a host name"),
])
def test_what_is_no_ntp_server_is_refused_in_words(given, words):
    with pytest.raises(Exception, match=words) as refused:
        clean_ntp_server(given)
    assert type(refused.value).__name__ == "ValidationError"


def form(**values):
    return DateTimeForm({"time_zone": "UTC", "ntp1": "", "ntp2": "", "ntp3": ""} | values)


def test_errors_stand_next_to_their_field():
    bad = form(ntp2="192.0.2.300", ntp3="bad host")
    assert not bad.is_valid()
    assert set(bad.errors) == {"ntp2", "ntp3"}
    assert "not a valid IPv4 address" in bad.errors["ntp2"][0]


def test_the_same_server_twice_is_refused_on_the_second():
    twice = form(ntp1="192.0.2.123", ntp3="192.0.2.123")
    assert not twice.is_valid()
    assert twice.errors["ntp3"] == ["192.0.2.123 is NTP Server 1 already."]


def test_the_time_zones_are_the_systems_and_an_unknown_one_is_refused():
    assert "Europe/London" in date_time.time_zones()
    assert "localtime" not in date_time.time_zones()
    unknown = form(time_zone="Mars/Olympus_Mons")
    assert not unknown.is_valid()
    assert "not a time zone this system knows" in unknown.errors["time_zone"][0]
    good = form(time_zone="Europe/London", ntp1="ntp.example.org", ntp3="192.0.2.123")
    assert good.is_valid(), good.errors
    assert good.ntp_servers() == ["ntp.example.org", "192.0.2.123"]


def test_a_synchronised_chrony_reads_as_synchronised_to_its_source():
    tracking = chrony.parse_tracking(TRACKING_SYNCED)
    sources = chrony.parse_sources(SOURCES_SYNCED)
    assert tracking.synchronised
    assert tracking.ref_name == "192.0.2.123" and tracking.stratum == 9
    assert tracking.clock_words == "3.5 µs fast of NTP time"
    assert [(s.name, s.selected, s.stratum, s.answered, s.last_rx) for s in sources] == \
        [("192.0.2.123", True, 8, 7, 0)]
    assert sources[0].state_words == "synchronised to it"
    assert sources[0].offset_words == "189 ns"


def test_an_unsynchronised_chrony_says_so_and_its_unreached_sources_have_no_sample():
    tracking = chrony.parse_tracking(TRACKING_UNSYNCED)
    sources = chrony.parse_sources(SOURCES_UNSYNCED)
    assert not tracking.synchronised
    assert [(s.name, s.state_words, s.answered, s.last_rx) for s in sources] == [
        ("192.0.2.99", "unreachable or not yet usable", 0, None),
        ("192.0.2.98", "unreachable or not yet usable", 0, None)]


def test_output_that_is_not_chronycs_csv_is_refused():
    with pytest.raises(ValueError, match="not 14"):
        chrony.parse_tracking("Reference ID    : C000027B (192.0.2.123)\n")
    with pytest.raises(ValueError, match="not 10"):
        chrony.parse_sources("^* 192.0.2.123  8   0   177     0   +189ns\n")


def test_a_chronyd_that_does_not_answer_is_told_in_words(tmp_path):
    status = chrony.read_status(tmp_path / "nothing.sock")
    assert not status.running and not status.synchronised
    assert "chronyd is not running or cannot be reached" in status.error


@pytest.fixture
def supervisor(monkeypatch):
    asked = []
    monkeypatch.setattr(date_time, "ask_supervisor", asked.append)
    return asked


@pytest.fixture
def etc(settings, tmp_path):
    settings.ETC_DIR = tmp_path / "etc"
    return settings.ETC_DIR


@pytest.mark.django_db
def test_saving_writes_chrony_conf_and_restarts_chronyd(supervisor, etc):
    assert do_save_date_time("Europe/London", ["192.0.2.123"], "tester") == \
        date_time.Saved("restart")
    stored = DateTimeSettings.load()
    assert (stored.time_zone, stored.ntp_servers) == ("Europe/London", ["192.0.2.123"])
    assert "server 192.0.2.123 iburst\n" in (etc / "chrony" / "chrony.conf").read_text()
    assert supervisor == [{"restart": "chronyd", "by": "tester"}]


@pytest.mark.django_db
def test_a_time_zone_alone_leaves_chronyd_running(supervisor, etc):
    do_save_date_time("UTC", ["192.0.2.123"], "tester")
    assert do_save_date_time("Asia/Tokyo", ["192.0.2.123"], "tester") == date_time.Saved("")
    assert DateTimeSettings.load().time_zone == "Asia/Tokyo"
    assert supervisor == [{"restart": "chronyd", "by": "tester"}]


@pytest.mark.django_db
def test_without_a_supervisor_it_is_saved_and_says_chronyd_was_not_restarted(etc, monkeypatch):
    def nobody(request):
        raise date_time.WorkerUnavailable("no supervisor is running.")

    monkeypatch.setattr(date_time, "ask_supervisor", nobody)
    assert do_save_date_time("UTC", ["192.0.2.123"], "tester") == \
        date_time.Saved("restart", "no supervisor is running.")
    assert DateTimeSettings.load().ntp_servers == ["192.0.2.123"]


@pytest.mark.django_db
def test_saving_no_server_removes_the_configuration_and_stops_chronyd(supervisor, etc):
    do_save_date_time("UTC", ["192.0.2.123"], "tester")
    do_save_date_time("UTC", [], "tester")
    assert not (etc / "chrony" / "chrony.conf").exists()
    assert supervisor[-1] == {"stop": "chronyd", "by": "tester"}


@pytest.mark.django_db
def test_a_configuration_that_cannot_be_written_saves_nothing(supervisor, etc, monkeypatch):
    def refuse(text):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(chrony, "write_config", refuse)
    with pytest.raises(PermissionError):
        do_save_date_time("Europe/London", ["192.0.2.123"], "tester")
    assert not DateTimeSettings.objects.exists()
    assert supervisor == []


@pytest.mark.django_db
def test_every_writer_gets_the_same_rules(supervisor, etc):
    with pytest.raises(Exception, match="has a space"):
        do_save_date_time("UTC", ["a b"], "tester")
    with pytest.raises(ValueError, match="not a time zone"):
        do_save_date_time("Nowhere/Else", [], "tester")
    assert not DateTimeSettings.objects.exists()


@pytest.fixture
def browser(db):
    user = get_user_model().objects.create_user("loadbalancer", password="a-Long-test-pass")
    client = Client(enforce_csrf_checks=False)
    client.force_login(user)
    return client


def test_the_page_saves_and_shows_times_in_the_chosen_zone(browser, supervisor, etc):
    url = reverse("local:date-time")
    page = browser.get(url).content.decode()
    assert "No NTP server is set: chronyd is not running." in page
    response = browser.post(url, {"time_zone": "Asia/Tokyo", "ntp1": "192.0.2.123",
                                  "ntp2": "", "ntp3": ""})
    assert response.status_code == 302
    page = browser.get(url).content.decode()
    assert "Saved: chronyd restarts with the NTP servers." in page
    assert "(Asia/Tokyo)" in page and "JST" in page
    # chronyd does not run here: the page says so rather than guessing
    assert "chronyd is not running" in page
    assert timezone.get_current_timezone() != zoneinfo.ZoneInfo("Asia/Tokyo")  # per request


def test_a_bad_server_is_refused_next_to_its_field_and_nothing_saved(browser, supervisor, etc):
    response = browser.post(reverse("local:date-time"), {
        "time_zone": "UTC", "ntp1": "<script>x</script>", "ntp2": "", "ntp3": ""})
    assert response.status_code == 200
    page = response.content.decode()
    assert 'id="field-ntp1"' in page and "not a host name or an IP address" in page
    assert "<script>x</script>" not in page  # escaped
    assert not DateTimeSettings.objects.exists() and supervisor == []


class FakeAccount:
    pw_name, pw_uid, pw_gid = "lbadmin", 999, 995


@pytest.mark.parametrize(("lab", "sets_clock"), [(object(), False), (None, True)])
def test_only_an_appliances_own_chronyd_sets_the_clock_and_holds_sys_time(tmp_path, lab,
                                                                         sets_clock):
    stack = Stack(tmp_path, lab=lab)
    stack._account = FakeAccount()
    command = stack.chronyd_command()
    assert command[:8] == ["chronyd", "-d", "-U", "-u", "lbadmin", "-F", "1", "-f"]
    assert command[8] == str(tmp_path / "etc" / "chrony" / "chrony.conf")
    assert ("-x" not in command) is sets_clock
    caps = "--ambient-caps=-all,+sys_time"
    assert (caps in stack.as_service("chronyd")) is sets_clock
    assert stack_module.CAPABILITIES["chronyd"] == ("sys_time",)


def test_chronyd_runs_only_where_its_configuration_was_written(tmp_path):
    stack = Stack(tmp_path, extra_env={"LBADMIN_ETC_DIR": str(tmp_path / "etc2")})
    assert not stack.chrony_configured()
    with pytest.raises(stack_module.StartError, match="no NTP server is set"):
        stack.start_chronyd()
    chrony.write_config("server 192.0.2.123 iburst\n", tmp_path / "etc2/chrony/chrony.conf")
    assert stack.chrony_configured()


def test_restart_services_says_why_chronyd_does_not_run():
    from maintenance.restarts import service_rows

    state = {"version": "1", "services": {"chronyd": {"configured": False, "running": False},
                                          "keepalived": {"configured": False}}}
    rows = {row.name: row for row in service_rows(state)}
    assert rows["chronyd"].not_configured_why == \
        "no NTP server is set under Local Configuration › System Date & time"
    assert rows["chronyd"].restart_reason == ""  # nothing to run: nothing down
    assert rows["keepalived"].not_configured_why == "this appliance is not in a clustered pair"


def test_the_status_refreshes_itself_without_counting_as_the_users_activity(browser):
    from appliance.middleware import POLLING_ELEMENTS

    response = browser.get(reverse("local:date-time"), HTTP_HX_REQUEST="true",
                           HTTP_HX_TRIGGER="date-time-status")
    page = response.content.decode()
    assert response.status_code == 200 and page.startswith('<section class="panel" '
                                                           'id="date-time-status"')
    assert "<html" not in page
    assert "date-time-status" in POLLING_ELEMENTS
