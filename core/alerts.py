"""Alerts: what happened, queued in Redis for the maintenance worker to send (email through the
Smart Host, a webhook, an SNMP trap: maintenance.alerts).

Anything may raise one — the checks worker on a health transition, the dataplane worker on a
failed apply, the supervisor on a service that died (it imports only core), the WebUI's "Send
test alert" — and none of them waits on a relay: `raise_alert` appends to a Redis list and
returns. Beat's `deliver-alerts` takes what is queued every 2 seconds on the maintenance worker
(which makes the appliance's outbound calls) and sends it, so a slow or failing relay never
holds a health check or an apply, and what fails is logged and shown, never retried for ever.

An alert that cannot be queued (Redis down) is logged where it happened and dropped: health
checks and applies go on whatever Redis does.
"""

import json
import logging
import time
import uuid
from dataclasses import asdict, dataclass, field

import redis

from .runtime import redis_client

log = logging.getLogger("lbadmin.alerts")

QUEUE_KEY = "lbadmin:alerts:queue"
QUEUE_KEPT = 1000  # the newest alerts a long relay outage keeps queued
STATUS_KEY = "lbadmin:alerts:status"  # the last delivery: when, and the last error
RESULT_PREFIX = "lbadmin:alerts:result:"  # a test alert's outcome, for the page that sent it
RESULT_TTL = 600
ONCE_PREFIX = "lbadmin:alerts:once:"

# What an alert can be about, and the words a subject starts with.
EVENTS = {
    "real-server-down": "Real server down",
    "real-server-up": "Real server up",
    "apply-failed": "Apply failed",
    "service-died": "Service died",
    "takeover": "Took over",
    "test": "Test alert",
}
SEVERITY = {"real-server-down": "warning", "real-server-up": "info", "apply-failed": "error",
            "service-died": "error", "takeover": "warning", "test": "info"}


@dataclass
class Alert:
    event: str  # a key of EVENTS
    text: str  # what happened, in words, whole ("Real server … of VNA is down: …")
    service_id: int | None = None  # a virtual service's alerts also go to its own address
    details: dict = field(default_factory=dict)  # plain values for the webhook's JSON
    at: float = field(default_factory=time.time)
    id: str = field(default_factory=lambda: uuid.uuid4().hex)

    @property
    def subject(self):
        return f"{EVENTS.get(self.event, self.event)}: {self.text}"[:200]

    @property
    def severity(self):
        return SEVERITY.get(self.event, "warning")

    def to_json(self):
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text):
        data = json.loads(text)
        return cls(**{key: data[key] for key in cls.__dataclass_fields__ if key in data})


def raise_alert(event, text, service_id=None, details=None, *, client=None, once_key=None,
                once_for=600):
    """Queue an alert for delivery; returns it, or None when it was not queued. Never raises.

    `once_key`: the same key within `once_for` seconds raises nothing (a failure that repeats
    on every retry is one alert, not one every half second)."""
    alert = Alert(event=event, text=text, service_id=service_id, details=details or {})
    try:
        client = client or redis_client()
        if once_key and not client.set(ONCE_PREFIX + once_key, "1", nx=True, ex=once_for):
            return None
        pipe = client.pipeline()
        pipe.rpush(QUEUE_KEY, alert.to_json())
        pipe.ltrim(QUEUE_KEY, -QUEUE_KEPT, -1)
        pipe.execute()
    except (redis.RedisError, OSError) as problem:
        log.warning("alert not queued (Redis: %s): %s", problem, alert.subject)
        return None
    return alert


def take(client=None, limit=100):
    """The queued alerts (oldest first, at most `limit`), removed from the queue."""
    raws = (client or redis_client()).lpop(QUEUE_KEY, limit) or []
    alerts = []
    for raw in raws:
        try:
            alerts.append(Alert.from_json(raw))
        except (ValueError, TypeError) as problem:
            log.warning("a queued alert is unreadable and dropped: %s", problem)
    return alerts


def record_delivery(errors, client=None):
    """After a delivery: when it happened and, if any channel failed, the words of the last
    failure (kept until the next failure, with its time, for the settings page)."""
    now = time.time()
    mapping = {"last_at": now}
    if errors:
        mapping |= {"last_error": "; ".join(errors)[:2000], "last_error_at": now}
    else:
        mapping["last_ok_at"] = now
    (client or redis_client()).hset(STATUS_KEY, mapping=mapping)


def delivery_status(client=None):
    """{"last_at", "last_ok_at", "last_error", "last_error_at"} as far as known (strings)."""
    raw = (client or redis_client()).hgetall(STATUS_KEY)
    return {key.decode(): value.decode() for key, value in raw.items()}


def record_result(alert_id, result, client=None):
    """A test alert's outcome: {"ok": bool, "lines": [words per channel]}."""
    (client or redis_client()).set(RESULT_PREFIX + alert_id, json.dumps(result), ex=RESULT_TTL)


def read_result(alert_id, client=None):
    raw = (client or redis_client()).get(RESULT_PREFIX + alert_id)
    return json.loads(raw) if raw else None
