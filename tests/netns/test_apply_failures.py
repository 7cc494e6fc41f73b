"""The data-plane worker never wedges: an apply that meets any error — one nobody expected
included — is recorded as failed with its reason and shown in the WebUI's banner, the previous
ruleset keeps serving, and the next change (a Halt) reaches the kernel as usual. Proven by
connections from the client namespace."""

import html
import logging

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse

from clusters import runtime, services
from clusters.dataplane import apply, conntrack, desired
from clusters.models import ConfigGeneration, VirtualService
from lab import VIP
from network import netlink

from .test_dataplane import (
    CUT,
    USER,
    halt_cuts_and_falls_back,
    real_server,
    served_by,
    vna_service,
)
from .traffic import HeldConnection, ask

pytestmark = pytest.mark.netns
OTHER_VIP = "198.51.100.101"  # in eth1's subnet, as the guide's VIP is


@pytest.fixture
def webui(transactional_db):
    """A logged-in browser on the WebUI (Django's test client)."""
    client = Client()
    client.force_login(get_user_model().objects.create_user(
        "loadbalancer", password="a-Long-test-pass"))
    return client


def banner(webui):
    """The apply banner as the WebUI polls it: (HTTP status, its text)."""
    response = webui.get(reverse("overview:apply-status"))
    return response.status_code, html.unescape(response.content.decode())


def fail_once(monkeypatch, module, name, error):
    """Make module.name raise `error` on its first call only; later calls are the real ones."""
    real, calls = getattr(module, name), []

    def failing_once(*args, **kwargs):
        calls.append(args)
        if len(calls) == 1:
            raise error
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, failing_once)
    return calls


def test_an_unexpected_error_is_recorded_shown_and_the_next_change_halts_as_usual(
        dataplane, lab, webui, monkeypatch, caplog):
    primary = real_server(vna_service())
    dataplane.apply()
    live_before = apply._live
    # A change whose apply meets an error nobody expected: placing its new VIP raises.
    vna_service(label="Other", vip=OTHER_VIP, ports="12000")
    calls = fail_once(monkeypatch, netlink, "ensure_vips", ValueError(
        "'192.0.2.9\\n' does not appear to be an IPv4 or IPv6 address"))
    with caplog.at_level(logging.ERROR, logger="lbadmin.dataplane"):
        result = dataplane.apply(expect_ok=False)
    assert calls, "the apply did not place addresses: the error was never raised"
    reason = "ValueError: '192.0.2.9\\n' does not appear to be an IPv4 or IPv6 address"
    assert result["ok"] is False and result["error"] == reason
    assert result["generation"] == ConfigGeneration.current()
    status = runtime.read_status()
    assert status.failed_generation == ConfigGeneration.current() and status.error == reason
    assert status.state_for(ConfigGeneration.current()) == "failed"
    # logged with its traceback
    logged = [r for r in caplog.records if r.name == "lbadmin.dataplane" and r.exc_info]
    assert logged and logged[-1].exc_info[0] is ValueError
    # the banner says so, with the reason, and stops polling
    code, text = banner(webui)
    assert code == 286 and "Apply failed" in text and reason in text
    # the previous ruleset is still live, and `_live` says so
    assert apply._live is live_before

    # The next change, a Halt, reaches the kernel: the open connection is cut, and new ones
    # go to the (masqueraded) fallback.
    halt_cuts_and_falls_back(dataplane, lab, primary)
    # The change that failed went in with it: its VIP answers (no real server: the fallback).
    assert served_by(ask(lab, OTHER_VIP, 12000))[0] == "secondary"
    code, text = banner(webui)
    assert code == 286 and "Applied:" in text and "Apply failed" not in text


def test_a_malformed_vip_in_the_database_fails_in_words_and_removing_it_recovers(
        dataplane, lab, webui):
    real_server(vna_service())
    dataplane.apply()
    broken = vna_service(label="Broken", vip=OTHER_VIP, ports="12000")
    # What no form lets through, but a hand-edited database could hold.
    VirtualService.objects.filter(pk=broken.pk).update(vip=f"{OTHER_VIP}\n")
    ConfigGeneration.bump()
    result = dataplane.apply(expect_ok=False)
    assert result["ok"] is False and result["error"].startswith("ValueError: ")
    code, text = banner(webui)
    assert code == 286 and "Apply failed" in text and "ValueError: " in text
    assert served_by(ask(lab, VIP, 12000))[0] == "primary"  # the previous ruleset serves
    services.do_delete_service(broken, USER)
    assert dataplane.apply()["ok"]
    assert served_by(ask(lab, VIP, 12000))[0] == "primary"
    assert "Applied:" in banner(webui)[1]


def test_an_error_reading_the_desired_state_is_recorded_against_the_newest_change(
        dataplane, lab, monkeypatch):
    primary = real_server(vna_service())
    dataplane.apply()
    services.do_set_state(primary, "drain", USER)
    fail_once(monkeypatch, desired, "from_database", KeyError("check_type"))
    result = dataplane.apply(expect_ok=False)
    assert result["error"] == "KeyError: 'check_type'"
    assert result["generation"] == ConfigGeneration.current()
    assert runtime.read_status().failed_generation == ConfigGeneration.current()
    assert served_by(ask(lab, VIP, 12000))[0] == "primary"  # not drained yet
    dataplane.apply()
    assert served_by(ask(lab, VIP, 12000))[0] == "secondary"  # drained


def test_when_the_cut_fails_the_new_ruleset_is_live_and_the_next_apply_cuts(
        dataplane, lab, monkeypatch):
    primary = real_server(vna_service())
    dataplane.apply()
    with HeldConnection(lab, VIP, 12000) as held:
        assert held.greeting.startswith("primary port 12000")
        services.do_set_state(primary, "halt", USER)
        fail_once(monkeypatch, conntrack, "delete_by_mark", RuntimeError("socket gone"))
        result = dataplane.apply(expect_ok=False)
        assert result["error"].startswith("RuntimeError: socket gone")
        assert "the new ruleset is live" in result["error"]
        assert apply._live.cut_marks == {primary.id}  # what the kernel holds: the Halt
        assert served_by(ask(lab, VIP, 12000))[0] == "secondary"
        assert held.talk("still").startswith("primary port 12000 echo still")  # not cut
        result = dataplane.apply()  # the next apply, with nothing else changed
        assert result["cut"] == [primary.id]
        assert held.talk("after") in CUT
