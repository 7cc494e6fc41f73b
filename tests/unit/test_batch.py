"""The batch (api.batch over core.audit.one_change): many WebUI actions as one change — one
transaction, one generation, one apply request, one revision, an audit line each; a failure
inside undoes everything and sends nothing. Outside a batch every action is its own change,
as before."""

import pytest

from api.batch import batch, summary
from clusters import services
from clusters.models import ConfigGeneration, RealServer, VirtualService
from core.models import AuditEntry
from maintenance.models import Revision

pytestmark = pytest.mark.django_db


class Key:
    """A user as api.keys.user_for gives it: the key's name rides on it."""
    username = "loadbalancer"
    api_key_name = "ansible"


def add(label, vip, user):
    service = VirtualService(label=label, vip=vip, ports="80")
    service.full_clean()
    services.do_save_service(service, user)
    server = RealServer(service=service, label="primary", ip="192.0.2.110")
    server.full_clean()
    return services.do_save_real_server(server, user)


def test_a_batch_is_one_generation_one_apply_and_one_revision_with_an_audit_line_each(
        sent, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True), batch(Key(), "API v2"):
        servers = [add(f"service {i}", f"198.51.100.{10 + i}", Key()) for i in range(5)]
    assert ConfigGeneration.current() == 1
    assert {server.changed_generation for server in servers} == {1}
    assert sent == [{}]
    revision = Revision.objects.get()
    assert revision.user == "loadbalancer (API key ansible)"
    assert revision.action.startswith("API v2: added virtual service service 0")
    assert revision.action.endswith("and 7 more changes")
    lines = list(AuditEntry.objects.order_by("id").values_list("user", "action"))
    assert len(lines) == 10
    assert lines[0] == ("loadbalancer (API key ansible)",
                        "added virtual service service 0 (198.51.100.10:80)")
    assert "<VirtualService" not in revision.xml and "service 4" in revision.xml


def test_a_failure_inside_undoes_everything_and_sends_nothing(
        sent, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(RuntimeError), \
            batch("tester") as current:
        add("first", "198.51.100.10", "tester")
        current.after_commit(lambda: sent.append("after"))
        raise RuntimeError("the third call failed")
    assert not VirtualService.objects.exists()
    assert ConfigGeneration.current() == 0
    assert not AuditEntry.objects.exists()
    assert not Revision.objects.exists()
    assert sent == []  # no apply, and no work after commit


def test_work_after_commit_runs_once_the_batch_committed(sent, django_capture_on_commit_callbacks):
    order = []
    with django_capture_on_commit_callbacks(execute=True), batch("tester") as current:
        add("first", "198.51.100.10", "tester")
        current.after_commit(lambda: order.append(VirtualService.objects.count()))
        order.append("inside")
    assert order == ["inside", 1]


def test_outside_a_batch_each_action_is_its_own_change(sent, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        add("first", "198.51.100.10", "tester")
        add("second", "198.51.100.11", "tester")
    assert ConfigGeneration.current() == 4
    assert len(sent) == 4
    assert Revision.objects.count() == 4


def test_an_empty_batch_changes_nothing(sent, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True), batch("tester"):
        pass
    assert ConfigGeneration.current() == 0 and sent == [] and not Revision.objects.exists()


def test_a_batch_inside_a_batch_is_the_same_change(sent, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True), batch("tester"):
        add("first", "198.51.100.10", "tester")
        with batch("tester"):
            add("second", "198.51.100.11", "tester")
    assert ConfigGeneration.current() == 1 and len(sent) == 1
    assert Revision.objects.count() == 1


def test_the_revision_names_a_few_changes_and_counts_the_rest():
    assert summary(["a"], "lbcli") == "lbcli: a"
    assert summary(["a", "b", "c", "d", "e"], "API v2") == "API v2: a; b; c; and 2 more changes"
