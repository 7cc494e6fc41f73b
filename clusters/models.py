"""Layer 4 virtual services and their real servers: the desired state of the data plane."""

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import F

from core.configuration import BACKEND, FLOATING, VIP, Holder

from .validators import (
    format_ports,
    parse_ports,
    ranges_overlap,
    validate_host,
    validate_ipv4_host,
)

LABEL_HELP = "A name for people; letters, digits and punctuation are all fine."


class VirtualService(models.Model):
    class Protocol(models.TextChoices):
        TCP = "tcp", "TCP"
        UDP = "udp", "UDP"
        TCP_UDP = "tcp+udp", "TCP and UDP"

    class Forwarding(models.TextChoices):
        NAT = "nat", "NAT"

    class Scheduler(models.TextChoices):
        WRR = "wrr", "Weighted Round Robin"
        WLC = "wlc", "Weighted Least-Connection (emulated)"

    class CheckType(models.TextChoices):
        EXTERNAL = "external", "External Script"
        CONNECT = "connect", "Connect to Port"
        HTTP = "http", "Negotiate HTTP"
        HTTPS = "https", "Negotiate HTTPS"
        PING = "ping", "Ping Server"
        ALWAYS_ON = "on", "No checks, Always On"
        ALWAYS_OFF = "off", "No checks, Always Off"

    class OnFailure(models.TextChoices):
        KEEP = "keep", "Keep open connections (no new ones)"
        CUT = "cut", "Cut open connections"

    CHECKED = (CheckType.EXTERNAL, CheckType.CONNECT, CheckType.HTTP, CheckType.HTTPS,
               CheckType.PING)

    label = models.CharField(max_length=64, unique=True, help_text=LABEL_HELP,
                             error_messages={"unique": "Another virtual service has this label."})
    vip = models.CharField("Virtual Service IP Address", max_length=15,
                           validators=[validate_ipv4_host])
    ports = models.CharField("Ports", max_length=400)
    protocol = models.CharField(max_length=8, choices=Protocol.choices, default=Protocol.TCP)
    forwarding = models.CharField("Forwarding Method", max_length=8,
                                  choices=Forwarding.choices, default=Forwarding.NAT)
    scheduler = models.CharField(max_length=8, choices=Scheduler.choices,
                                 default=Scheduler.WRR)
    persistent = models.BooleanField("Persistence", default=False)
    persistence_timeout = models.PositiveIntegerField(
        "Persistence Timeout (s)", default=300,
        validators=[MinValueValidator(1), MaxValueValidator(86400)])
    check_type = models.CharField("Check Type", max_length=8, choices=CheckType.choices,
                                  default=CheckType.ALWAYS_ON)
    check_script = models.ForeignKey(
        "healthchecks.HealthCheckScript", verbose_name="External Script", null=True,
        blank=True, on_delete=models.PROTECT, related_name="services")
    check_port = models.PositiveIntegerField(
        "Check Port", null=True, blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(65535)],
        help_text="Blank = every port of the service (each must accept).")
    check_request = models.CharField("Request to send", max_length=200, default="/",
                                     help_text="The path to GET, e.g. / or /health.")
    check_host = models.CharField("Virtual Host", max_length=200, blank=True,
                                  help_text="The Host header; blank = the VIP.")
    check_expect = models.CharField(
        "Response expected", max_length=200, blank=True,
        help_text="A status code such as 200, or text the answer must contain. "
                  "Blank = any 2xx or 3xx status.")
    check_interval = models.PositiveIntegerField(
        "Check Interval (s)", default=30,
        validators=[MinValueValidator(1), MaxValueValidator(3600)])
    check_timeout = models.PositiveIntegerField(
        "Check Timeout (s)", default=5, validators=[MinValueValidator(1),
                                                    MaxValueValidator(3599)])
    failure_count = models.PositiveIntegerField(
        "Failure Count", default=10, validators=[MinValueValidator(1), MaxValueValidator(100)],
        help_text="Consecutive failed checks before a real server is taken out; any success "
                  "resets the count. 30 s × 10 = the guide's 5 minutes.")
    on_failure = models.CharField("When a real server fails", max_length=8,
                                  choices=OnFailure.choices, default=OnFailure.KEEP)
    fallback_ip = models.CharField("Fallback IP Address", max_length=15, blank=True,
                                   validators=[validate_ipv4_host])
    fallback_port = models.PositiveIntegerField(
        "Fallback Port", default=0, validators=[MaxValueValidator(65535)],
        help_text="0 = the port the client asked for.")
    fallback_masq = models.BooleanField("MASQ Fallback", default=False)
    alert_address = models.EmailField(
        "Email Alert Destination Address", blank=True,
        help_text="Alerts about this service (a real server down or up, the fallback server "
                  "taking over) go here as well as to the global address (Layer 4 – Advanced "
                  "Configuration). Blank = the global address only.")

    class Meta:
        ordering = ["label"]

    def __str__(self):
        return self.label

    @property
    def port_ranges(self):
        return parse_ports(self.ports)

    @property
    def protocols(self):
        return self.protocols_of(self.protocol)

    @classmethod
    def protocols_of(cls, protocol):
        return ("tcp", "udp") if protocol == cls.Protocol.TCP_UDP else (protocol,)

    def clean(self):
        errors = {}
        try:
            ranges = parse_ports(self.ports)
            self.ports = format_ports(ranges)
        except ValidationError as error:
            errors["ports"] = error.messages
            ranges = None
        if ranges and self.vip:
            for other in VirtualService.objects.filter(vip=self.vip).exclude(pk=self.pk):
                if set(other.protocols) & set(self.protocols) and \
                        ranges_overlap(ranges, other.port_ranges):
                    errors["ports"] = [
                        f"{self.vip} already takes some of these ports "
                        f"({self.get_protocol_display()}) in virtual service “{other.label}”."]
                    break
        if self.check_type in self.CHECKED and self.check_interval and self.check_timeout \
                and self.check_timeout >= self.check_interval:
            errors["check_timeout"] = ["The timeout must be shorter than the check interval."]
        if self.check_type == self.CheckType.EXTERNAL and not self.check_script_id:
            errors["check_script"] = ["Choose the external script to run (add one under "
                                      "Health Check Scripts)."]
        if self.fallback_ip and self.fallback_ip == self.vip:
            errors["fallback_ip"] = ["The fallback server cannot be the virtual service's "
                                     "own address."]
        if errors:
            raise ValidationError(errors)


class RealServer(models.Model):
    class State(models.TextChoices):
        ONLINE = "online", "Online"
        DRAIN = "drain", "Drain"
        HALT = "halt", "Halt"

    service = models.ForeignKey(VirtualService, on_delete=models.CASCADE,
                                related_name="real_servers")
    label = models.CharField(max_length=64, help_text=LABEL_HELP)
    ip = models.CharField("Real Server IP Address", max_length=15,
                          validators=[validate_ipv4_host])
    port = models.PositiveIntegerField(
        "Real Server Port", null=True, blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(65535)],
        help_text="Blank = the port the client asked for.")
    weight = models.PositiveIntegerField(default=100, validators=[MaxValueValidator(65535)])
    min_connections = models.PositiveIntegerField(
        "Minimum Connections", default=0, validators=[MaxValueValidator(1_000_000)],
        help_text="After reaching the maximum, the server takes new connections again only "
                  "below this many (0 = below the maximum).")
    max_connections = models.PositiveIntegerField(
        "Maximum Connections", default=0, validators=[MaxValueValidator(1_000_000)],
        help_text="0 = no limit. Past it the server gets no new connections.")
    state = models.CharField(max_length=8, choices=State.choices, default=State.ONLINE)
    # The configuration generation of the last change to this row, so System Overview can show
    # the row as pending until that generation is live.
    changed_generation = models.PositiveBigIntegerField(default=0, editable=False)

    class Meta:
        ordering = ["service__label", "label"]
        constraints = [
            models.UniqueConstraint(fields=["service", "label"], name="unique_label_per_service",
                                    violation_error_message="This virtual service already has "
                                                            "a real server with this label."),
        ]

    def __str__(self):
        return self.label

    def clean(self):
        errors = {}
        if self.service_id and self.ip and self.ip == self.service.vip:
            errors["ip"] = ["A real server cannot have the virtual service's own address."]
        if self.max_connections and self.min_connections > self.max_connections:
            errors["min_connections"] = ["The minimum cannot be above the maximum."]
        if errors:
            raise ValidationError(errors)

    @property
    def ports_display(self):
        return str(self.port) if self.port else self.service.ports


class ConfigGeneration(models.Model):
    """A counter bumped by every change to the data plane's desired state.

    The dataplane worker records in Redis which generation is live, so the WebUI can say
    "applying…" until the change it just saved is in the kernel.
    """

    number = models.PositiveBigIntegerField(default=0)

    def __str__(self):
        return f"configuration generation {self.number}"

    @classmethod
    def bump(cls):
        cls.objects.get_or_create(pk=1)
        cls.objects.filter(pk=1).update(number=F("number") + 1)
        return cls.current()

    @classmethod
    def current(cls):
        row = cls.objects.filter(pk=1).first()
        return row.number if row else 0


class FloatingIP(models.Model):
    """An address brought up on the interface whose subnet holds it, apart from the
    interface's own addresses (the HA pair will move these between appliances). In NAT mode
    the real servers use one as their default gateway."""

    address = models.CharField(max_length=15, unique=True, validators=[validate_ipv4_host],
                               error_messages={"unique": "This floating IP is already added."})

    class Meta:
        ordering = ["address"]
        verbose_name = "floating IP"

    def __str__(self):
        return self.address


def addresses_held(address=None, kinds=None):
    """Every address Cluster Configuration holds — VIPs, real servers, fallback servers,
    floating IPs — for the rules over the whole configuration (core.configuration; registered
    by ClustersConfig.ready). Given `address` and/or `kinds`, only the rows that may hold that
    address as one of those kinds are read."""
    kinds = {VIP, BACKEND, FLOATING} if kinds is None else set(kinds)

    def holding(queryset, field):
        return queryset.filter(**{field: address}) if address is not None else \
            queryset.exclude(**{field: ""})

    held = []
    if VIP in kinds:
        for sid, label, vip in holding(VirtualService.objects, "vip").values_list(
                "id", "label", "vip"):
            held.append(Holder(vip, VIP, f"the VIP of virtual service “{label}”",
                               ("service", sid)))
    if BACKEND in kinds:
        for sid, label, fallback in holding(VirtualService.objects, "fallback_ip").values_list(
                "id", "label", "fallback_ip"):
            held.append(Holder(fallback, BACKEND, f"the fallback server of “{label}”",
                               ("fallback", sid)))
        for rid, label, ip, service in holding(RealServer.objects, "ip").values_list(
                "id", "label", "ip", "service__label"):
            held.append(Holder(ip, BACKEND, f"the real server “{label}” of “{service}”",
                               ("realserver", rid)))
    if FLOATING in kinds:
        for fid, floating in holding(FloatingIP.objects, "address").values_list("id",
                                                                                "address"):
            held.append(Holder(floating, FLOATING, "a floating IP", ("floating", fid)))
    return held


class ApplyLogEntry(models.Model):
    """Logs > Layer 4: one row per data-plane apply, written by the dataplane worker where it
    records the result (clusters.runtime); the newest APPLY_LOG_KEPT rows are kept."""

    at = models.DateTimeField(auto_now_add=True, db_index=True)
    generation = models.BigIntegerField(null=True)
    ok = models.BooleanField(default=True)
    mode = models.CharField(max_length=12, blank=True)  # full / difference ("" unknown)
    statements = models.PositiveIntegerField(null=True)
    milliseconds = models.FloatField(null=True)
    cut = models.CharField(max_length=500, blank=True)  # the marks whose connections were cut
    warnings = models.TextField(blank=True)  # one per line
    stage = models.CharField(max_length=100, blank=True)  # what failed: "applying the ruleset"
    error = models.TextField(blank=True)  # the kernel's (or other) words of a failure

    class Meta:
        ordering = ["-id"]

    def __str__(self):
        return f"apply of generation {self.generation}: {'ok' if self.ok else 'failed'}"

    @property
    def warning_lines(self):
        return [line for line in self.warnings.splitlines() if line]

    @property
    def cut_marks(self):
        return [int(mark) for mark in self.cut.split() if mark.isdigit()]


class AlertSettings(models.Model):
    """Layer 4 – Advanced Configuration › Alerts (one row): where alerts go — email through
    the Smart Host, a webhook, SNMP traps. Sent by the maintenance worker (maintenance.alerts);
    part of a backup, so the HA pair replicates it (the guide's 10.1.1 keeps no alert setting
    local)."""

    source_address = models.EmailField(
        "Email Alert Source Address", blank=True,
        help_text="The From address of alert emails. Blank = lbadmin@ the appliance's "
                  "hostname.")
    destination_address = models.EmailField(
        "Email Alert Destination Address", blank=True,
        help_text="Every alert goes here; a virtual service's own address gets its alerts too.")
    smart_host = models.CharField(
        "Smart Host", max_length=253, blank=True, validators=[validate_host],
        help_text="The SMTP relay that sends the alert emails on, e.g. mail.example.org or "
                  "192.0.2.25.")
    smart_host_port = models.PositiveIntegerField(
        "Smart Host Port", default=25, validators=[MinValueValidator(1),
                                                  MaxValueValidator(65535)])
    webhook_url = models.URLField(
        "Webhook URL", max_length=500, blank=True,
        help_text="Each alert is POSTed here as JSON (http:// or https://).")
    trap_host = models.CharField(
        "SNMP Trap Receiver", max_length=253, blank=True, validators=[validate_host],
        help_text="Each alert is sent here as an SNMP v2c trap; blank = no traps.")
    trap_port = models.PositiveIntegerField(
        "Trap Port", default=162, validators=[MinValueValidator(1), MaxValueValidator(65535)])
    trap_community = models.CharField(
        "Trap Community", max_length=64, default="public",
        help_text="The v2c community the traps carry.")

    class Meta:
        verbose_name = "alert settings"

    def __str__(self):
        return "alert settings"

    @classmethod
    def load(cls):
        return cls.objects.get_or_create(pk=1)[0]

    @property
    def channels(self):
        """The channels set: "email", "webhook", "trap"."""
        return [name for name, on in (
            ("email", bool(self.smart_host and self.destination_address)),
            ("webhook", bool(self.webhook_url)), ("trap", bool(self.trap_host))) if on]

    def clean(self):
        errors = {}
        if self.destination_address and not self.smart_host:
            errors["smart_host"] = ["Enter the Smart Host: the appliance sends its alert "
                                    "emails through it."]
        if self.trap_community and (any(c.isspace() or ord(c) < 32 for c in
                                        self.trap_community)):
            errors["trap_community"] = ["The community may not contain spaces or control "
                                        "characters."]
        if self.trap_host and not self.trap_community:
            errors["trap_community"] = ["Enter the community the trap receiver expects."]
        if errors:
            raise ValidationError(errors)
