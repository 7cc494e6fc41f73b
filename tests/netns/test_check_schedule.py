"""The check schedule in Redis: due times advance by the interval (no drift), a missed round is
run once and the phase kept, and the schedule survives the worker (it lives in Redis)."""

import pytest

from clusters.models import RealServer, VirtualService
from healthchecks import tasks

pytestmark = pytest.mark.django_db


@pytest.fixture
def sent(monkeypatch, redis_server):
    redis_server.flushall()
    calls = []
    monkeypatch.setattr(tasks.run_check, "apply_async",
                        lambda args, eta=None, expires=None: calls.append((args, eta)))
    return calls


@pytest.fixture
def server():
    service = VirtualService.objects.create(label="VNA", vip="198.51.100.100", ports="12000",
                                            check_type="connect", check_interval=10,
                                            check_timeout=2)
    return RealServer.objects.create(service=service, label="primary", ip="192.0.2.110")


def due_of(redis_server, server):
    return redis_server.zscore(tasks.DUE, server.pk)


def test_a_due_check_is_sent_with_its_due_time_and_the_next_is_one_interval_later(
        sent, server, redis_server, monkeypatch):
    clock = [1000.0]
    monkeypatch.setattr(tasks.time, "time", lambda: clock[0])
    tasks.dispatch()  # schedules the new server within its first interval
    first = due_of(redis_server, server)
    assert 1000.0 <= first <= 1010.0
    clock[0] = first + 0.2  # the tick after it fell due
    tasks.dispatch()
    assert sent[-1][0] == (server.pk, first)
    assert due_of(redis_server, server) == first + 10  # from the due time, not from now


def test_a_round_missed_while_nothing_dispatched_runs_once_and_keeps_the_phase(
        sent, server, redis_server, monkeypatch):
    clock = [1000.0]
    monkeypatch.setattr(tasks.time, "time", lambda: clock[0])
    tasks.dispatch()
    first = due_of(redis_server, server)
    clock[0] = first + 35  # the worker was down for three and a half intervals
    tasks.dispatch()
    assert len(sent) == 1
    assert due_of(redis_server, server) == first + 40


def test_servers_whose_checks_stop_leave_the_schedule(sent, server, redis_server):
    tasks.dispatch()
    assert due_of(redis_server, server) is not None
    VirtualService.objects.update(check_type="on")
    tasks.dispatch()
    assert due_of(redis_server, server) is None
