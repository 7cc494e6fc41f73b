"""Tasks go to the right queue, and are sent only when the transaction that asked commits."""

import logging

import pytest
from django.db import transaction

from appliance.celery import app
from core.models import AuditEntry
from core.queues import QUEUES
from core.workers import send_on_commit
from network import tasks

# Where each task must run (DESIGN.md): the data plane's and the network's writer, the checks
# worker in the appliance's namespace, the maintenance worker for the rest.
EXPECTED_QUEUE = {
    "network.tasks.describe_network_namespace": "dataplane",
    "network.tasks.describe_routes": "dataplane",
    "network.tasks.apply_network": "dataplane",
    "network.tasks.apply_network_from_database": "dataplane",
    "network.tasks.write_resolver_files": "dataplane",
    "network.tasks.roll_back_unconfirmed": "dataplane",  # the lock-out guard's, every kind's
    "clusters.tasks.apply_dataplane": "dataplane",
    "clusters.tasks.compare_live_ruleset": "dataplane",
    # read-only kernel reads (CAP_NET_ADMIN), never behind an apply nor an apply behind them
    "clusters.tasks.sample_connections": "reader",  # conntrack's whole table
    "reports.tasks.list_connections": "reader",  # conntrack, filtered by the kernel
    "reports.tasks.sample_traffic": "reader",  # nftables' counters
    "healthchecks.tasks.dispatch": "checks",
    "healthchecks.tasks.run_check": "checks",
    "core.tasks.beat_heartbeat": "maintenance",
    "maintenance.tasks.scheduled_backup": "maintenance",
    "maintenance.tasks.install_update": "maintenance",
    "maintenance.tasks.check_for_update": "maintenance",
    # Firewall Lockdown and Firewall Script: nftables, in the appliance's namespace
    "maintenance.firewall_tasks.apply_lockdown_task": "dataplane",
    "maintenance.firewall_tasks.apply_script_task": "dataplane",
    "maintenance.firewall_tasks.live_tables_task": "dataplane",
    "maintenance.firewall_tasks.apply_firewall_from_database": "dataplane",
    "maintenance.tasks.deliver_alerts": "maintenance",  # outbound: SMTP, webhook, traps
    # the HA pair: outbound HTTPS to the other node, never in a web request
    "ha.tasks.pair": "maintenance",
    "ha.tasks.break_pair": "maintenance",
    "ha.tasks.replicate_now": "maintenance",
    "ha.tasks.catch_up": "maintenance",
    # the split-brain guard's ARP probes need CAP_NET_RAW in the appliance's namespace
    "ha.tasks.guard_split_brain": "checks",
}


def test_every_task_of_lbadmin_is_routed_to_its_queue():
    app.loader.import_default_modules()
    ours = {name for name in app.tasks if not name.startswith("celery.")}
    assert ours == set(EXPECTED_QUEUE), "a task was added or removed: say where it runs"
    route = app.amqp.router.route
    for name, queue in EXPECTED_QUEUE.items():
        assert route({}, name)["queue"].name == queue, name
    assert set(EXPECTED_QUEUE.values()) == set(QUEUES)


def test_beat_schedules_only_tasks_that_exist():
    app.loader.import_default_modules()
    for entry in app.conf.beat_schedule.values():
        assert entry["task"] in app.tasks, entry["task"]


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
        monkeypatch, django_capture_on_commit_callbacks, caplog):
    def broker_down(*args, **kwargs):
        raise ConnectionRefusedError("redis is down")

    monkeypatch.setattr(tasks.describe_network_namespace, "apply_async", broker_down)
    with caplog.at_level(logging.ERROR), \
            django_capture_on_commit_callbacks(execute=True) as callbacks, \
            transaction.atomic():
        AuditEntry.objects.create(user="admin", action="a change saved while Redis is down")
        send_on_commit(tasks.describe_network_namespace)
    assert len(callbacks) == 1  # the send was attempted once committed, and did not raise
    assert AuditEntry.objects.filter(action="a change saved while Redis is down").exists()
    assert "redis is down" in caplog.text  # logged, not hidden
