"""Helpers for tests and benchmarks that drive running stacks: run Django code against one,
and wait for what a real process does in its own time."""

import subprocess
import sys
import time


def in_stack(stack, code, *args, timeout=120):
    """Python with Django set up on the stack's own data directory (the services' database),
    as a process of the appliance would run it."""
    script = "import django; django.setup()\n" + code
    result = subprocess.run([sys.executable, "-c", script, *map(str, args)],
                            cwd=stack.code_dir, env=stack.code_env(), capture_output=True,
                            text=True, timeout=timeout)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout.strip()


def in_appliance(stack, code, *args, timeout=120):
    """Python with Django set up on the stack's data directory, run where and as its
    maintenance worker runs (the appliance's namespace, the service user, no capability)."""
    script = "import django; django.setup()\n" + code
    command = [*stack.lab.exec_prefix(stack.lab_role), *stack.as_service("worker-maintenance"),
               sys.executable, "-c", script, *map(str, args)]
    result = subprocess.run(command, cwd=stack.code_dir,
                            env={**stack.code_env(), **stack.lab_env()}, capture_output=True,
                            text=True, timeout=timeout)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout.strip()


def wait_for(probe, timeout, every=0.05):
    """probe()'s first true value within `timeout` seconds, else its last (false) one."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(every)


def holds_steadily(probe, seconds, every=0.1):
    """True when `probe()` is true at every poll for `seconds` (a state that must hold)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not probe():
            return False
        time.sleep(every)
    return bool(probe())
