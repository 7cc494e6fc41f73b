import celery.exceptions
import kombu.exceptions
import redis
from django.contrib import messages
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from appliance.models import AuditEntry
from appliance.runtime import redis_client
from appliance.services import record_audit
from clusters.status import layer4_status
from clusters.tasks import apply_dataplane, compare_live_ruleset

WORKER_TIMEOUT = 10  # seconds the dataplane worker has to read and compare the ruleset
UNREACHABLE = (celery.exceptions.TimeoutError, kombu.exceptions.OperationalError,
               redis.RedisError, OSError, RuntimeError)  # RuntimeError: result store lost


def _ask_dataplane_worker(task, **kwargs):
    """Send a task and wait for its answer; Redis is pinged first so a dead broker is told
    at once instead of after the client's reconnect attempts."""
    redis_client(timeout=1.0).ping()
    return task.apply_async(kwargs=kwargs).get(timeout=WORKER_TIMEOUT)


def layer4_configuration(request):
    """View Configuration > Layer 4: the live ruleset, read by the dataplane worker in the
    appliance's namespace, and whether it matches what the configuration asks for."""
    comparison, error = None, ""
    try:
        comparison = _ask_dataplane_worker(compare_live_ruleset)
    except (redis.RedisError, OSError) as problem:
        error = f"Redis is down ({problem}), so the live ruleset cannot be asked for."
    except UNREACHABLE as problem:
        error = (f"The dataplane worker did not answer within {WORKER_TIMEOUT} s "
                 f"({type(problem).__name__}), so the live ruleset cannot be shown.")
    return render(request, "reports/layer4.html", {
        "page_title": "Layer 4", "comparison": comparison, "error": error,
        "layer4": layer4_status(),
    })


@require_POST
def rebuild_layer4(request):
    """Rebuild lbadmin's table from the configuration (repairs drift), as at worker start."""
    try:
        redis_client(timeout=1.0).ping()
        apply_dataplane.apply_async(kwargs={"full": True})
    except UNREACHABLE as problem:
        messages.error(request, f"Could not reach the dataplane worker: {problem}")
    else:
        record_audit(request.user, "rebuilt the Layer 4 ruleset")
        messages.success(request, "Rebuild requested: the ruleset is being made again from "
                                  "the configuration.")
    return redirect("view:layer4")


def user_log(request):
    return render(request, "reports/user_log.html", {
        "page_title": "User Log", "entries": AuditEntry.objects.all()[:500],
    })
