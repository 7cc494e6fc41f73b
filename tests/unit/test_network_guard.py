"""The lock-out guard's shared parts (network.guard): one model, one hold, one confirm action,
one roll-back task for network changes and the firewall lockdown alike. The kernel side of
each kind's roll-back is in tests/netns/test_network.py and tests/netns/test_firewall.py; the
countdown on real workers in tests/browser/test_firewall.py."""

import dataclasses
import datetime
import html

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from core.models import AuditEntry
from maintenance import firewall, firewall_tasks
from maintenance.models import FirewallLockdown
from network import guard, kernel, services, tasks
from network.models import NetworkConfiguration, PendingNetworkChange

from . import test_network_forms

pytestmark = pytest.mark.django_db

fake_worker = test_network_forms.fake_worker  # the same fixture, shared
BEFORE = {"eth0": {"addresses": ["192.0.2.1/24"]}}


class FakeSocket:
    """gunicorn's socket, as network.views.browser_address reads it."""

    def __init__(self, *local):
        self.local = local

    def getsockname(self):
        return self.local


def browser_at(came_from, arrived_on=None):
    """A logged-in browser coming from `came_from`, its connection arriving on the appliance's
    `arrived_on` (not known when None: no gunicorn socket)."""
    user = get_user_model().objects.get_or_create(username="loadbalancer")[0]
    extra = {"REMOTE_ADDR": came_from}
    if arrived_on:
        extra["gunicorn.socket"] = FakeSocket(arrived_on, 9443)
    client = Client(**extra)
    client.force_login(user)
    return client


def held(kind=guard.NETWORK, token=None, seconds=60, previous=None):
    return PendingNetworkChange.objects.create(
        kind=kind, token=token or f"{kind}-held", previous=previous or {"interfaces": BEFORE},
        deadline=timezone.now() + datetime.timedelta(seconds=seconds))


def test_both_kinds_are_registered_by_their_apps():
    assert guard.KINDS[guard.NETWORK] is services.NETWORK_CHANGE
    assert guard.KINDS[firewall.LOCKDOWN].undo is firewall_tasks.put_back_lockdown


def test_a_network_change_held_while_another_waits_rolls_back_to_the_last_kept_settings(
        fake_worker, django_capture_on_commit_callbacks):
    stored = NetworkConfiguration.load()
    stored.interfaces = BEFORE
    stored.save()
    with django_capture_on_commit_callbacks(execute=True):
        first = services.do_configure_network(
            {"interfaces": {"eth0": {"addresses": ["192.0.2.2/24"]}}}, "admin",
            browser_address="192.0.2.1")
        second = services.do_configure_network(
            {"interfaces": {"eth0": {"addresses": ["192.0.2.3/24"]}}}, "admin",
            browser_address="192.0.2.2")
    assert list(PendingNetworkChange.objects.values_list("token", flat=True)) == [second.token]
    assert second.previous["interfaces"] == BEFORE and second.browser == "192.0.2.2"
    assert second.kind == guard.NETWORK
    assert [args for args, _ in fake_worker] == [(first.token,), (second.token,)]


def test_the_roll_back_undoes_by_the_changes_kind(monkeypatch):
    undone = []
    monkeypatch.setitem(guard.KINDS, "test", dataclasses.replace(services.NETWORK_CHANGE,
                                                                 undo=undone.append))
    held("test", "t1", previous={"x": 1})
    assert tasks.roll_back_unconfirmed("t1") == "rolled back"
    assert undone == [{"x": 1}]
    assert PendingNetworkChange.objects.get(token="t1").rolled_back
    assert tasks.roll_back_unconfirmed("t1") == "kept"  # twice is once
    assert tasks.roll_back_unconfirmed("gone") == "kept"
    assert undone == [{"x": 1}]


def test_a_roll_back_the_kernel_refuses_leaves_the_change_waiting(monkeypatch):
    def refuse(config):
        raise kernel.NetworkError("eth0: no such device (test)")

    monkeypatch.setattr(kernel, "apply_network", refuse)
    NetworkConfiguration.objects.update_or_create(pk=1, defaults={"interfaces": {}})
    pending = held()
    assert tasks.roll_back_unconfirmed(pending.token) == "eth0: no such device (test)"
    pending.refresh_from_db()
    assert not pending.rolled_back and NetworkConfiguration.load().interfaces == {}


def test_at_the_workers_start_what_ran_out_is_rolled_back_and_the_rest_rescheduled(
        monkeypatch):
    undone, sent = [], []
    monkeypatch.setattr(kernel, "apply_network", undone.append)
    monkeypatch.setattr(tasks.roll_back_unconfirmed, "apply_async",
                        lambda args, eta: sent.append((args, eta)))
    late = held(token="late", seconds=-5)
    waiting = held(token="waiting", seconds=30)
    lockdown = held(firewall.LOCKDOWN, token="lockdown", seconds=-5,
                    previous={"enabled": False, "networks": ""})
    tasks.resume_guard(guard.NETWORK)
    late.refresh_from_db()
    assert late.rolled_back and undone == [{"interfaces": BEFORE}]
    assert NetworkConfiguration.load().interfaces == BEFORE
    assert sent == [(("waiting",), waiting.deadline)]
    lockdown.refresh_from_db()
    assert not lockdown.rolled_back  # the firewall's start rolls back its own


def test_only_a_browser_at_an_address_the_change_kept_may_keep_a_network_change():
    NetworkConfiguration.objects.update_or_create(
        pk=1, defaults={"interfaces": {"eth0": {"addresses": ["192.0.2.2/24"]}}})
    pending = held()  # it removed 192.0.2.1
    url = reverse("local:network-confirm", args=[pending.token])

    old = browser_at("192.0.2.50", arrived_on="192.0.2.1")
    page = html.unescape(old.get(url).content.decode())
    assert "This change removed the address your browser is using (192.0.2.1). Open this " \
           "page from one of the new addresses and confirm it before" in page
    assert f"<code>{url}</code>" in page and "Keep the change" not in page
    refused = html.unescape(old.post(url, follow=True).content.decode())
    assert "Your browser reached the appliance at 192.0.2.1, an address this change " \
           "removed" in refused
    pending.refresh_from_db()
    assert not pending.confirmed

    new = browser_at("192.0.2.50", arrived_on="192.0.2.2")
    page = html.unescape(new.get(url).content.decode())
    assert "Your browser reaches the appliance at an address the change kept." in page
    assert "Keep the change" in page
    kept = new.post(url)
    assert kept["Location"] == reverse("local:interfaces")
    pending.refresh_from_db()
    assert pending.confirmed
    assert AuditEntry.objects.filter(
        action="confirmed the network change from 192.0.2.50").exists()
    assert "The change is confirmed and kept." in new.get(url).content.decode()


def test_a_change_is_shown_only_on_its_own_kinds_page():
    lockdown = held(firewall.LOCKDOWN, token="lock", previous={"enabled": False,
                                                                "networks": ""})
    network = held(token="net")
    browser = browser_at("127.0.0.1")
    page = browser.get(reverse("local:network-confirm", args=[lockdown.token]))
    assert "No such pending change." in page.content.decode()
    browser.post(reverse("local:network-confirm", args=[lockdown.token]))
    page = browser.get(reverse("maintenance:firewall-lockdown-pending", args=[network.token]))
    assert "No such pending change." in page.content.decode()
    assert not PendingNetworkChange.objects.filter(confirmed=True).exists()


def test_a_rolled_back_change_says_so_and_cannot_be_kept():
    pending = held(token="gone", seconds=-30)
    pending.rolled_back = True
    pending.save()
    browser = browser_at("127.0.0.1")
    url = reverse("local:network-confirm", args=[pending.token])
    page = browser.post(url, follow=True).content.decode()
    assert "Too late: the change was rolled back." in page
    assert "Nobody confirmed the change by" in page and "lbadmin put the previous settings " \
           "back." in page
    assert services.do_confirm_change(pending.token, "admin") == "too late"


def test_the_lockdowns_own_check_decides_who_may_keep_it():
    FirewallLockdown.objects.update_or_create(pk=1, defaults={"enabled": True,
                                                              "networks": "203.0.113.0/24"})
    pending = held(firewall.LOCKDOWN, token="lock", previous={"enabled": False,
                                                              "networks": ""})
    outside = guard.Browser(came_from="198.51.100.10", arrived_on="198.51.100.1")
    assert services.do_confirm_change(pending.token, "admin", outside) == "refused"
    inside = guard.Browser(came_from="203.0.113.5")
    assert services.do_confirm_change(pending.token, "admin", inside) == "kept"
    assert AuditEntry.objects.filter(
        action="confirmed the firewall lockdown from 203.0.113.5").exists()
