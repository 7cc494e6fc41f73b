"""Sending work to the workers and to the supervisor, with failures told in words."""

import json

import celery.exceptions
import kombu.exceptions
import redis
from django.db import transaction

from .runtime import SUPERVISOR_REQUESTS_KEY, redis_client, supervisor_call, supervisor_state

WORKER_TIMEOUT = 10  # seconds a worker has to answer the WebUI


# What sending a task raises when Redis, the broker, is down or unreachable.
BROKER_ERRORS = (redis.RedisError, OSError, kombu.exceptions.OperationalError)


class WorkerUnavailable(Exception):
    """Redis or a worker did not answer; the message says which, in words."""


def send_on_commit(task, *args, **kwargs):
    """Send `task` once the current transaction commits; nothing for a rolled-back one.

    Robust: if Redis is down the change is still saved (the WebUI shows Redis down and the
    change as not yet applied) and the sampler re-sends the apply once Redis is back.
    """
    transaction.on_commit(lambda: task.apply_async(args, kwargs), robust=True)


def send_task(task, *args, **kwargs):
    """Send `task` and return its AsyncResult. Redis is pinged first, so a dead broker is told
    at once (WorkerUnavailable) instead of after the client's reconnect attempts."""
    try:
        redis_client(timeout=1.0).ping()
        return task.apply_async(args, kwargs)
    except BROKER_ERRORS as problem:
        raise WorkerUnavailable(f"Redis is down ({problem}).") from problem


def ask_worker(task, **kwargs):
    """Run `task` on the worker of its queue (core.queues) and wait for its answer; the
    failure names that worker ("The reader worker did not answer…")."""
    result = send_task(task, **kwargs)
    try:
        return result.get(timeout=WORKER_TIMEOUT)
    except (celery.exceptions.TimeoutError, kombu.exceptions.OperationalError,
            redis.RedisError, OSError, RuntimeError) as problem:
        queue = task.app.amqp.router.route({}, task.name)["queue"].name
        raise WorkerUnavailable(
            f"The {queue} worker did not answer within {WORKER_TIMEOUT} s "
            f"({type(problem).__name__}).") from problem


def ask_dataplane(task, **kwargs):
    """Run `task` (one of the dataplane's) on the dataplane worker and wait for its answer."""
    return ask_worker(task, **kwargs)


def ask_supervisor(request):
    """Queue a request (restart a service, switch to a release) for the supervisor, the
    process outside the services that starts and stops them (runner/supervisor.py): on its
    own unix socket, which works while Redis is down; else on its Redis list."""
    try:
        reply = supervisor_call({"request": request})
    except (OSError, ValueError):
        pass  # no socket (a supervisor of an older release), or not reachable: try Redis
    else:
        if reply.get("queued"):
            return
        raise WorkerUnavailable(f"the supervisor refused it: {reply.get('error', reply)}")
    if supervisor_state() is None:
        raise WorkerUnavailable("no supervisor is running (it is the process that started "
                                "the services: `make demo`), or Redis is down.")
    try:
        redis_client().rpush(SUPERVISOR_REQUESTS_KEY, json.dumps(request))
    except (redis.RedisError, OSError) as problem:
        raise WorkerUnavailable(f"Redis is down ({problem}).") from problem
