"""Tasks are sent only when the transaction that asked for them commits."""

import pytest
from django.db import transaction

from appliance import tasks
from appliance.celery import QUEUES, app, send_on_commit


def test_tasks_are_routed_to_the_three_queues():
    assert QUEUES == ("dataplane", "checks", "maintenance")
    route = app.amqp.router.route
    assert route({}, "appliance.tasks.describe_network_namespace")["queue"].name == "dataplane"
    assert route({}, "clusters.tasks.apply")["queue"].name == "dataplane"
    assert route({}, "healthchecks.tasks.run_check")["queue"].name == "checks"
    assert route({}, "maintenance.tasks.install_update")["queue"].name == "maintenance"


@pytest.mark.django_db
def test_a_task_asked_for_inside_a_transaction_is_sent_on_commit(
        monkeypatch, django_capture_on_commit_callbacks):
    sent = []
    monkeypatch.setattr(tasks.describe_network_namespace, "apply_async",
                        lambda *args, **kwargs: sent.append(args))
    with django_capture_on_commit_callbacks(execute=True):
        with pytest.raises(RuntimeError), transaction.atomic():
            send_on_commit(tasks.describe_network_namespace)
            raise RuntimeError("rolled back")
        with transaction.atomic():
            send_on_commit(tasks.describe_network_namespace)
            assert sent == []  # not before the commit
    assert len(sent) == 1  # the rolled-back one was never sent


@pytest.mark.django_db
def test_a_broker_that_is_down_does_not_undo_the_saved_change(
        monkeypatch, django_capture_on_commit_callbacks):
    def broker_down(*args, **kwargs):
        raise ConnectionRefusedError("redis is down")

    monkeypatch.setattr(tasks.describe_network_namespace, "apply_async", broker_down)
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        send_on_commit(tasks.describe_network_namespace)  # logged, not raised
