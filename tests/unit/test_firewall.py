"""Firewall Lockdown Wizard and Firewall Script: rendering, refusals, the forms and the pages'
decisions. The kernel side (the tables live, connections refused and admitted, the guard's
roll-back) is in tests/netns/test_firewall.py."""

import datetime
import html
import ipaddress
import re

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from core.workers import WorkerUnavailable
from ha.models import Pair
from ha.vrrp import AddressOwner
from maintenance import firewall, firewall_services, firewall_views
from maintenance.firewall_forms import FirewallScriptForm, LockdownForm
from maintenance.models import FirewallLockdown, FirewallScript
from network import tasks as network_tasks
from network.models import PendingNetworkChange

pytestmark = pytest.mark.django_db

GOLDEN_LOCKDOWN = """table inet lbadmin_lockdown
delete table inet lbadmin_lockdown
table inet lbadmin_lockdown {
\tchain input {
\t\ttype filter hook input priority filter; policy accept;
\t\ttcp dport { 22, 9080, 9443 } jump guarded
\t}
\tchain guarded {
\t\tiif "lo" accept
\t\tct state established,related accept
\t\tip saddr { 203.0.113.0/24, 198.51.100.10/32 } accept
\t\tip6 saddr { 2001:db8::/32 } accept
\t\tip saddr 198.51.100.2 accept comment "HA peer"
\t\treject with tcp reset
\t}
}
"""


def networks(text):
    return firewall.parse_networks(text)


def test_the_lockdown_admits_its_networks_loopback_and_the_peer_on_the_webui_and_ssh_ports():
    script = firewall.render_lockdown(
        True, networks("203.0.113.0/24\n198.51.100.10, 2001:db8::/32"),
        firewall.lockdown_ports(9443, 0), peer="198.51.100.2")
    assert script == GOLDEN_LOCKDOWN


def test_a_lockdown_that_is_off_removes_its_table_and_nothing_else():
    assert firewall.render_lockdown(False, networks("203.0.113.0/24"), (9443,)) == (
        "table inet lbadmin_lockdown\ndelete table inet lbadmin_lockdown\n")


def test_the_plain_http_port_set_for_the_webui_is_guarded_instead_of_9080():
    assert firewall.lockdown_ports(8443, 8080) == (22, 8080, 8443)


@pytest.mark.parametrize(("text", "words"), [
    ("203.0.113.0/33", "is not an IPv4 or IPv6 network"),
    ("somewhere", "is not an IPv4 or IPv6 network"),
    ("0.0.0.0/0", "admits every address"),
])
def test_a_bad_administration_network_is_refused_in_words(text, words):
    with pytest.raises(ValueError, match=words):
        firewall.parse_networks(text)


def test_admits_decides_by_network_loopback_and_peer():
    allowed = networks("203.0.113.0/24")
    assert firewall.admits(allowed, "203.0.113.7")
    assert not firewall.admits(allowed, "198.51.100.10")
    assert firewall.admits(allowed, "127.0.0.1") and firewall.admits(allowed, "::1")
    assert firewall.admits(allowed, "::ffff:203.0.113.7")
    assert firewall.admits(allowed, "198.51.100.2", peer="198.51.100.2")
    assert not firewall.admits(allowed, "not an address")


GOOD_SCRIPT = """# the administrator's own: drop a noisy scanner
set scanners { type ipv4_addr; elements = { 203.0.113.66 } }
chain input {
\ttype filter hook input priority filter; policy accept;
\tip saddr @scanners counter drop comment "scanners } go away"
}
"""


def test_a_script_of_chains_and_sets_is_wrapped_in_lbadmins_table():
    firewall.check_script(GOOD_SCRIPT)
    wrapped = firewall.render_script(GOOD_SCRIPT)
    assert wrapped.startswith("table inet lbadmin_script\ndelete table inet lbadmin_script\n"
                              "table inet lbadmin_script {\n# the administrator's own")
    assert wrapped.endswith("}\n}\n")
    # the administrator's line 1 is the wrapper's line WRAPPER_LINES + 1
    assert wrapped.split("\n")[firewall.WRAPPER_LINES].startswith("# the administrator's")


def test_an_empty_script_removes_its_table():
    assert firewall.render_script("  \n") == (
        "table inet lbadmin_script\ndelete table inet lbadmin_script\n")


@pytest.mark.parametrize(("script", "words"), [
    ("flush ruleset", "Line 1: “flush”"),
    ("chain a {\n}\ndelete table ip lbadmin", "Line 3: “delete” cannot start a statement"),
    ("chain a { type filter hook input priority 0; }\n}\ntable ip lbadmin {\n"
     "chain x { }", "Line 2: this “}” closes a brace"),
    ('include "/etc/lbadmin/secret_key"', "Line 1: “include” includes a file"),
    ("chain a {\n\tjump x\n}\nchain x { }\nmap table { type mark : verdict; }",
     "Line 5: “table” names a table"),
    ("chain a {\n", "not closed"),
    ('chain a { comment "open }', "quoted string is not closed"),
    ("chain a { \\\n}", "Backslashes"),
    ("add rule ip lbadmin schedule drop", "“add” cannot start a statement"),
])
def test_a_script_that_reaches_outside_its_table_is_refused_naming_the_line(script, words):
    with pytest.raises(firewall.ScriptRefused, match=re.escape(words)):
        firewall.check_script(script)


def test_nfts_line_numbers_become_the_administrators_own():
    error = ("/dev/stdin:6:21-25: Error: syntax error, unexpected newline\n"
             "  tcp dport 22 acept\n                    ^^^^^")
    assert firewall.administrators_lines(error).startswith(
        "line 3:21-25: Error: syntax error")
    assert firewall.administrators_lines("/dev/stdin:1:1-5: Error: x").startswith(
        "lbadmin's wrapper: Error")


# -- forms ------------------------------------------------------------------------------------


def lockdown_form(networks_text, browser="198.51.100.10", **data):
    return LockdownForm({"enabled": "on", "networks": networks_text, **data},
                        instance=FirewallLockdown.load(), browser=browser)


def test_a_network_without_the_browsers_address_is_refused_unless_confirmed():
    form = lockdown_form("203.0.113.0/24")
    assert not form.is_valid()
    assert "Your browser's address 198.51.100.10 is not in these networks" in \
        form.errors["networks"][0]
    assert lockdown_form("203.0.113.0/24", outside="on").is_valid()
    form = lockdown_form("198.51.100.0/24\n203.0.113.0/24")
    assert form.is_valid(), form.errors
    assert form.cleaned_data["networks"] == "198.51.100.0/24\n203.0.113.0/24"


def test_a_browser_on_loopback_is_always_admitted():
    assert lockdown_form("203.0.113.0/24", browser="127.0.0.1").is_valid()


def test_a_lockdown_with_no_network_is_refused():
    form = lockdown_form("")
    assert not form.is_valid()
    assert "Enter at least one administration network" in form.errors["networks"][0]


def test_the_script_form_refuses_what_the_wrapper_refuses():
    form = FirewallScriptForm({"script": "flush ruleset"}, instance=FirewallScript.load())
    assert not form.is_valid()
    assert "“flush”" in form.errors["script"][0]


# -- pages ------------------------------------------------------------------------------------

@pytest.fixture
def worker(monkeypatch):
    """The dataplane worker's answers, and the guard's roll-back sent with its countdown."""
    sent, scheduled = [], []

    def ask(task, **kwargs):
        sent.append((task.name, kwargs))
        if task.name.endswith("live_tables_task"):
            return {"lockdown": None, "script": None}
        return {"ok": True}

    monkeypatch.setattr(firewall_services, "ask_dataplane", ask)
    monkeypatch.setattr(firewall_views, "ask_dataplane", ask)
    monkeypatch.setattr(network_tasks.roll_back_unconfirmed, "apply_async",
                        lambda args, countdown: scheduled.append((args, countdown)))
    return sent, scheduled


def held_lockdowns():
    return PendingNetworkChange.objects.filter(kind=firewall.LOCKDOWN)


def browser_at(address):
    user = get_user_model().objects.get_or_create(username="loadbalancer")[0]
    client = Client(REMOTE_ADDR=address)
    client.force_login(user)
    return client


def test_the_wizard_offers_the_browsers_own_address(worker):
    page = browser_at("198.51.100.10").get(reverse("maintenance:firewall-lockdown"))
    text = page.content.decode()
    assert "Your browser reaches this appliance from <strong>198.51.100.10</strong>" in text
    assert re.search(r'<textarea name="networks"[^>]*>\s*198\.51\.100\.10</textarea>', text)


def test_a_lockdown_is_applied_then_waits_for_confirmation_from_an_admitted_address(
        worker, settings, django_capture_on_commit_callbacks):
    sent, scheduled = worker
    outside = browser_at("198.51.100.10")
    url = reverse("maintenance:firewall-lockdown")
    refused = outside.post(url, {"enabled": "on", "networks": "203.0.113.0/24"})
    assert refused.status_code == 200 and "is not in these networks" in refused.content.decode()
    assert not FirewallLockdown.load().enabled and not sent[1:]  # nothing asked, nothing saved
    with django_capture_on_commit_callbacks(execute=True):
        answer = outside.post(url, {"enabled": "on", "networks": "203.0.113.0/24",
                                    "outside": "on"})
    pending = held_lockdowns().get()
    assert answer.status_code == 302 and pending.token in answer["Location"]
    assert ("maintenance.firewall_tasks.apply_lockdown_task",
            {"enabled": True, "networks": "203.0.113.0/24"}) in sent
    assert scheduled == [((pending.token,), settings.NETWORK_CONFIRM_SECONDS)]
    assert pending.previous == {"enabled": False, "networks": ""}
    assert FirewallLockdown.load().enabled

    page = html.unescape(outside.get(answer["Location"]).content.decode())
    assert "your browser's address 198.51.100.10 is not in its networks" in page
    refused = html.unescape(outside.post(answer["Location"], follow=True).content.decode())
    assert "Your browser's address 198.51.100.10 is not in the administration networks" in \
        refused
    pending.refresh_from_db()
    assert not pending.confirmed  # only an address the lockdown admits may keep it
    inside = browser_at("203.0.113.5")
    assert "Keep the lockdown" in inside.get(answer["Location"]).content.decode()
    kept = inside.post(answer["Location"])
    assert kept["Location"] == reverse("maintenance:firewall-lockdown")
    pending.refresh_from_db()
    assert pending.confirmed


def test_a_refused_script_shows_the_kernels_words_and_keeps_the_previous_one(monkeypatch):
    FirewallScript.objects.create(pk=1, script="chain old { }")
    refusal = {"ok": False, "error": "line 2:3-7: Error: syntax error"}
    monkeypatch.setattr(firewall_services, "ask_dataplane", lambda task, **kw: refusal)
    monkeypatch.setattr(firewall_views, "ask_dataplane",
                        lambda task, **kw: {"lockdown": None, "script": "table inet x {}"})
    page = browser_at("198.51.100.10").post(reverse("maintenance:firewall-script"),
                                            {"script": "chain a {\n  bogus\n}"})
    text = page.content.decode()
    assert page.status_code == 200
    assert "Not applied: line 2:3-7: Error: syntax error The previous rules stay live." in text
    assert FirewallScript.load().script == "chain old { }"


def test_parse_networks_keeps_each_network_once():
    assert firewall.parse_networks("192.0.2.1, 192.0.2.1/32") == [
        ipaddress.ip_network("192.0.2.1/32")]


def test_the_pairs_peer_is_admitted_only_while_this_node_is_paired():
    paired = AddressOwner(load_pair=lambda: Pair(role=Pair.Role.PRIMARY,
                                                 peer_ip="198.51.100.2"))
    assert paired.peer_address() == "198.51.100.2"
    alone = AddressOwner(load_pair=lambda: Pair(role=Pair.Role.STANDALONE))
    assert alone.peer_address() is None


def test_the_firewall_pages_need_a_login():
    for name in ("maintenance:firewall-lockdown", "maintenance:firewall-script"):
        answer = Client().get(reverse(name))
        assert answer.status_code == 302 and "/login/" in answer["Location"]
    answer = Client().post(reverse("maintenance:firewall-lockdown-pending", args=["x"]))
    assert answer.status_code in (302, 403) and not held_lockdowns().exists()


def test_a_saved_lockdown_that_is_not_live_is_shown_in_red(worker):
    FirewallLockdown.objects.create(pk=1, enabled=True, networks="198.51.100.0/24")
    page = browser_at("198.51.100.10").get(reverse("maintenance:firewall-lockdown"))
    assert "The saved lockdown is not live" in page.content.decode()


def test_a_lockdown_whose_roll_back_did_not_run_says_so():
    pending = PendingNetworkChange.objects.create(
        kind=firewall.LOCKDOWN, token="late",
        deadline=timezone.now() - datetime.timedelta(minutes=1),
        previous={"enabled": False, "networks": ""})
    page = browser_at("198.51.100.10").get(
        reverse("maintenance:firewall-lockdown-pending", args=[pending.token]))
    assert "the dataplane worker has not put the previous lockdown back" in \
        page.content.decode()


def test_a_dead_worker_changes_nothing_and_says_so(monkeypatch):
    def dead(task, **kwargs):
        raise WorkerUnavailable("Redis is down (test).")

    monkeypatch.setattr(firewall_services, "ask_dataplane", dead)
    monkeypatch.setattr(firewall_views, "ask_dataplane", dead)
    page = browser_at("198.51.100.10").post(reverse("maintenance:firewall-lockdown"), {
        "enabled": "on", "networks": "198.51.100.0/24"})
    text = page.content.decode()
    assert page.status_code == 200
    assert "Redis is down (test). The previous lockdown stays." in text
    assert not FirewallLockdown.load().enabled and not held_lockdowns().exists()


def test_a_change_made_while_another_waits_rolls_back_to_the_last_kept_lockdown(
        worker, django_capture_on_commit_callbacks):
    FirewallLockdown.objects.create(pk=1, enabled=True, networks="192.0.2.0/24")  # kept
    with django_capture_on_commit_callbacks(execute=True):
        first = firewall_services.do_save_lockdown(True, "198.51.100.0/24", "admin")
        second = firewall_services.do_save_lockdown(True, "203.0.113.0/24", "admin")
    assert list(held_lockdowns().values_list("token", flat=True)) == [second.token]
    assert second.previous == {"enabled": True, "networks": "192.0.2.0/24"}
    assert first.token != second.token
    with django_capture_on_commit_callbacks(execute=True):
        assert firewall_services.do_save_lockdown(False, "", "admin") is None
    assert not held_lockdowns().exists()  # nothing left to turn it back on
