"""Sending the queued alerts (core.alerts) through the channels Layer 4 – Advanced Configuration
sets: email through the Smart Host (maintenance.mail), a webhook (maintenance.fetch, the
appliance's one outbound HTTP client and its address rules), SNMP v2c traps
(maintenance.traps). Runs on the maintenance worker (beat's deliver-alerts, every 2 s).

Each channel fails on its own: a relay that refuses does not keep the webhook or the trap from
going, and nothing is retried for ever — a failure is logged (Logs › System, the maintenance
worker's log) and its words kept for the settings page. The alerts taken in one round to the
same recipients are one email (a burst, e.g. every server of a switch going down at once, is
one message listing each); the webhook and the trap get one request each per alert.
"""

import datetime
import json
import logging

from clusters.models import AlertSettings, VirtualService
from core import alerts as queue
from network.models import NetworkConfiguration

from . import fetch, mail, traps

log = logging.getLogger("lbadmin.alerts")
WEBHOOK_DEADLINE = 10  # seconds for the whole POST
WEBHOOK_ANSWER_LIMIT = 64 * 1024
NOWHERE = ("Not sent: no alert destination is set (an email address, a webhook URL or a trap "
           "receiver).")


def when(alert):
    return datetime.datetime.fromtimestamp(alert.at, datetime.UTC).strftime(
        "%Y-%m-%d %H:%M:%S UTC")


def recipients_for(alert, settings, service_addresses):
    """The global destination address, then the service's own, each once."""
    found = []
    for address in (settings.destination_address, service_addresses.get(alert.service_id)):
        if address and address.lower() not in (a.lower() for a in found):
            found.append(address)
    return found


def sender_of(settings, hostname):
    return settings.source_address or f"lbadmin@{hostname}"


def email_subject(group, hostname):
    if len(group) == 1:
        return f"[{hostname}] {group[0].subject}"
    return f"[{hostname}] {len(group)} alerts: {group[0].subject}"[:200]


def email_body(group, hostname, service_labels):
    parts = []
    for alert in group:
        service = service_labels.get(alert.service_id)
        lines = [alert.text, "",
                 f"When: {when(alert)}",
                 f"Appliance: {hostname}",
                 f"Event: {alert.event} ({alert.severity})"]
        if service:
            lines.append(f"Virtual service: {service}")
        parts.append("\n".join(lines))
    return ("\n\n" + "-" * 60 + "\n\n").join(parts) + \
        "\n\n-- \nSent by lbadmin (Cluster Configuration › Layer 4 – Advanced Configuration)\n"


def webhook_body(alert, hostname, service_labels):
    """The JSON a webhook receives for one alert."""
    return json.dumps({
        "appliance": hostname, "id": alert.id, "event": alert.event,
        "severity": alert.severity, "subject": alert.subject, "text": alert.text,
        "at": datetime.datetime.fromtimestamp(alert.at, datetime.UTC).isoformat(
            timespec="seconds"),
        "service": service_labels.get(alert.service_id), "details": alert.details,
    }, sort_keys=True).encode()


def trap_bindings(alert, service_labels):
    return traps.varbinds(alert.event, alert.text, service_labels.get(alert.service_id) or "",
                          alert.severity)


class Outcome:
    """What happened to each alert on each channel, and the failures, in words."""

    def __init__(self, alerts):
        self.lines = {alert.id: [] for alert in alerts}
        self.failed = {alert.id: False for alert in alerts}
        self.errors = []

    def ok(self, alert, words):
        self.lines[alert.id].append(words)

    def error(self, alerts, words):
        log.warning("alert not sent: %s", words)
        self.errors.append(words)
        for alert in alerts:
            self.lines[alert.id].append(words)
            self.failed[alert.id] = True


def send_email(group, recipients, settings, hostname, labels, outcome):
    if not settings.smart_host:
        outcome.error(group, f"Email to {', '.join(recipients)} not sent: no Smart Host is set.")
        return
    message = mail.build(sender_of(settings, hostname), recipients,
                         email_subject(group, hostname), email_body(group, hostname, labels))
    try:
        mail.send(settings.smart_host, settings.smart_host_port, message)
    except mail.MailError as error:
        outcome.error(group, f"Email to {', '.join(recipients)} failed: {error}.")
    else:
        for alert in group:
            outcome.ok(alert, f"Email sent to {', '.join(recipients)} through "
                              f"{settings.smart_host}:{settings.smart_host_port}.")


def send_webhook(alert, settings, hostname, labels, outcome):
    try:
        status, _answer = fetch.exchange(
            settings.webhook_url, webhook_body(alert, hostname, labels), WEBHOOK_ANSWER_LIMIT,
            WEBHOOK_DEADLINE, headers=(("Content-Type", "application/json"),))
    except fetch.FetchError as error:
        outcome.error([alert], f"Webhook failed: {error}")
        return
    if 200 <= status < 300:
        outcome.ok(alert, f"Webhook {settings.webhook_url} answered {status}.")
    else:
        outcome.error([alert], f"Webhook {settings.webhook_url} answered {status}.")


def send_trap(alert, settings, labels, outcome):
    try:
        traps.send(settings.trap_host, settings.trap_port, settings.trap_community,
                   alert.event, trap_bindings(alert, labels))
    except traps.TrapError as error:
        outcome.error([alert], f"SNMP trap failed: {error}.")
    else:
        outcome.ok(alert, f"SNMP trap sent to {settings.trap_host}:{settings.trap_port}.")


def deliver(alerts, settings=None):
    """Send `alerts` through every channel set; returns the Outcome."""
    settings = settings or AlertSettings.load()
    hostname = NetworkConfiguration.load().hostname
    ids = {alert.service_id for alert in alerts if alert.service_id}
    services = {s.pk: s for s in VirtualService.objects.filter(pk__in=ids)}
    labels = {pk: s.label for pk, s in services.items()}
    labels |= {a.service_id: a.details.get("service") for a in alerts
               if a.service_id and a.service_id not in labels and a.details.get("service")}
    addresses = {pk: s.alert_address for pk, s in services.items()}
    outcome = Outcome(alerts)
    groups = {}
    for alert in alerts:
        recipients = recipients_for(alert, settings, addresses)
        if recipients:
            groups.setdefault(tuple(recipients), []).append(alert)
    for recipients, group in groups.items():
        send_email(group, list(recipients), settings, hostname, labels, outcome)
    for alert in alerts:
        if settings.webhook_url:
            send_webhook(alert, settings, hostname, labels, outcome)
        if settings.trap_host:
            send_trap(alert, settings, labels, outcome)
    for alert in alerts:
        if not outcome.lines[alert.id]:
            outcome.lines[alert.id].append(NOWHERE)
            outcome.failed[alert.id] = True
    return outcome


def deliver_queued(limit=100):
    """Take what is queued and send it (beat's deliver-alerts). Returns how many were sent."""
    alerts = queue.take(limit=limit)
    if not alerts:
        return 0
    outcome = deliver(alerts)
    for alert in alerts:
        if alert.event == "test":
            queue.record_result(alert.id, {"ok": not outcome.failed[alert.id],
                                           "lines": outcome.lines[alert.id]})
        else:
            log.info("alert %s: %s", "; ".join(outcome.lines[alert.id]), alert.subject)
    if any(lines != [NOWHERE] for lines in outcome.lines.values()):
        queue.record_delivery(outcome.errors)
    return len(alerts)
