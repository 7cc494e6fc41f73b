"""A control plane that heals itself, with real processes over a lab of its own: the
supervisor restarts what is killed (Redis, the dataplane worker, gunicorn), and Halt reaches
the kernel while Redis is down (the dataplane worker watches the generation in the database)."""

import os
import signal
import subprocess
import textwrap
import threading
import time

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from lab import SECONDARY_ADDRESS, VIP
from tests.conftest import running_stack
from tests.stacks import in_stack, wait_for

from .test_stack import https_get
from .traffic import ask

pytestmark = pytest.mark.netns
PORT = 12000

SETUP = textwrap.dedent(f"""
    from clusters import services
    from clusters.models import RealServer, VirtualService
    from lab import PRIMARY_ADDRESS
    service = VirtualService(label="VNA", vip="{VIP}", ports="{PORT}",
                             fallback_ip="{SECONDARY_ADDRESS}", fallback_port=0,
                             fallback_masq=True)
    service.full_clean()
    service = services.do_save_service(service, "tester")
    server = RealServer(service=service, label="PrimaryCluster", ip=PRIMARY_ADDRESS)
    server.full_clean()
    print(services.do_save_real_server(server, "tester").pk)
""")

SET_STATE = textwrap.dedent("""
    import sys, time
    from clusters import services
    from clusters.models import RealServer
    server = RealServer.objects.get(pk=int(sys.argv[1]))
    states = sys.argv[2].split(",")
    for state in states:
        print("at", time.time(), flush=True)
        services.do_set_state(server, state, "tester")
        time.sleep(float(sys.argv[3]))
    print("saved", flush=True)
""")






def live_table(stack):
    result = subprocess.run([*stack.lab.exec_prefix("lb"), "nft", "list", "table", "inet",
                             "lbadmin"], capture_output=True, text=True)
    return result.stdout


def served_by(stack):
    return ask(stack.lab, VIP, PORT).split()[0]


def comparison(stack):
    """View Configuration's comparison, run by the dataplane worker (the kernel against the
    database)."""
    return stack.celery_app().send_task("clusters.tasks.compare_live_ruleset").get(timeout=30)


def redis_answers(stack):
    try:
        return redis.Redis(unix_socket_path=str(stack.redis_socket), socket_timeout=1,
                           retry=Retry(NoBackoff(), 0)).ping()
    except (redis.RedisError, OSError):
        return False


def kill(stack, name):
    pid = stack.processes[name].pid
    os.killpg(pid, signal.SIGKILL)
    return pid


def restarted(stack, name, old_pid):
    """Whether `name` runs again under a new pid (the supervisor's restart takes it out of the
    table for a moment, so it may be missing)."""
    process = stack.processes.get(name)
    return process is not None and process.pid != old_pid and process.poll() is None


def halt_with_redis_down(stack, server):
    """kill -9 Redis, Halt the primary: (ms from the Halt's save until a new connection from
    the client reaches the fallback, s from the kill until Redis answers again)."""
    killed = time.monotonic()
    kill(stack, "redis")
    assert wait_for(lambda: not redis_answers(stack), 5)
    saved = []
    saver = threading.Thread(target=lambda: saved.append(
        in_stack(stack, SET_STATE, server, "halt", 0)))
    saver.start()
    assert wait_for(lambda: served_by(stack) == "secondary", 20, every=0.02)
    reached = time.time()
    assert wait_for(lambda: redis_answers(stack), 30, every=0.05)
    redis_back_s = time.monotonic() - killed
    saver.join(timeout=60)
    started = float(saved[0].split()[1])
    return (reached - started) * 1000, redis_back_s


@pytest.fixture(scope="module")
def stack():
    with running_stack() as started:
        yield started


@pytest.fixture(scope="module")
def primary(stack):
    server = in_stack(stack, SETUP)
    assert wait_for(lambda: served_by(stack) == "primary", 20)
    return server


def test_halt_reaches_the_kernel_while_redis_is_down_and_redis_comes_back_by_itself(
        stack, primary):
    halt_ms, redis_back_s = halt_with_redis_down(stack, primary)
    assert halt_ms < 5000
    assert redis_back_s < 15
    # the overview reads Redis answering again; the apply's result reaches Redis too
    in_stack(stack, "from core.runtime import service_status\n"
                    "assert service_status().redis_ok")
    stack.wait_for_workers(timeout=60)
    assert wait_for(lambda: comparison(stack)["matches"], 30, every=0.5)
    state = in_stack(stack, "from clusters import runtime\nfrom clusters.models import "
                            "ConfigGeneration\nprint(runtime.read_status().state_for("
                            "ConfigGeneration.current()))")
    assert wait_for(lambda: state == "applied", 1)
    assert "redis" in (stack.log_dir / "supervisor.log").read_text()
    in_stack(stack, SET_STATE, primary, "online", 0)
    assert wait_for(lambda: served_by(stack) == "primary", 10)


def test_a_killed_dataplane_worker_is_restarted_and_the_kernel_ends_equal_to_the_database(
        stack, primary):
    burst = threading.Thread(target=in_stack, args=(
        stack, SET_STATE, primary, ",".join(["halt", "drain", "online", "halt", "online"] * 10),
        0.05))
    burst.start()
    time.sleep(0.8)
    old = kill(stack, "worker-dataplane")
    burst.join(timeout=120)
    assert wait_for(lambda: restarted(stack, "worker-dataplane", old), 30)
    stack.wait_for_workers(timeout=60)
    assert wait_for(lambda: comparison(stack)["matches"], 30, every=0.5)
    assert served_by(stack) == "primary"  # the burst ended on online


def test_a_killed_webui_answers_again(stack):
    old = kill(stack, "web")
    assert wait_for(lambda: restarted(stack, "web", old), 30)

    def answers():
        try:
            return "Log in" in https_get(stack.https_port, "/lbadmin/login/")
        except OSError:
            return False

    assert wait_for(answers, 60, every=0.5)


def test_a_stopped_service_stays_down_and_restart_services_works_without_redis(stack):
    in_stack(stack, "from core.workers import ask_supervisor\n"
                    "ask_supervisor({'stop': 'beat', 'by': 'tester'})")
    assert wait_for(lambda: "beat" not in stack.processes, 30)
    time.sleep(3)
    assert "beat" not in stack.processes  # not restarted behind the administrator's back
    kill(stack, "redis")
    assert wait_for(lambda: not redis_answers(stack), 5)
    state = in_stack(stack, "from core.runtime import supervisor_state\n"
                            "print(supervisor_state()['services']['beat']['pid'])")
    assert state == "None"
    in_stack(stack, "from core.workers import ask_supervisor\n"
                    "ask_supervisor({'restart': 'beat', 'by': 'tester'})")
    assert wait_for(lambda: "beat" in stack.processes
                    and stack.processes["beat"].poll() is None, 60)
    assert wait_for(lambda: redis_answers(stack), 30)
    assert oct(os.stat(stack.data_dir / "supervisor.sock").st_mode & 0o777) == "0o600"
