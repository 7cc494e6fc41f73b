from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models


class Revision(models.Model):
    """The whole configuration (a backup's XML) after one saved change: History lists them,
    diffs any two, and rolls back to one."""

    at = models.DateTimeField(auto_now_add=True, db_index=True)
    user = models.CharField(max_length=150)
    action = models.CharField(max_length=300)
    xml = models.TextField()

    class Meta:
        ordering = ["-at", "-id"]

    def __str__(self):
        return f"revision {self.pk}: {self.action}"


class UpdateJob(models.Model):
    """One software update, from upload to its end; the page polls it while it runs.

    The supervisor writes progress, log, status and finished with plain SQL during the
    switch-over (runner/supervisor.py JobReport): keep those columns as they are."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SWITCHING = "switching", "Switching over"
        COMPLETED = "completed", "Completed"
        FAILED = "failed", "Failed"

    created = models.DateTimeField(auto_now_add=True)
    finished = models.DateTimeField(null=True, blank=True)
    user = models.CharField(max_length=150)
    from_version = models.CharField(max_length=32)
    to_version = models.CharField(max_length=32)
    archive = models.CharField(max_length=500)  # the verified upload, in the data directory
    source_url = models.CharField(max_length=300, blank=True)  # online: where it comes from
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    progress = models.PositiveSmallIntegerField(default=0)  # percent
    log = models.TextField(blank=True)

    class Meta:
        ordering = ["-created", "-id"]

    def __str__(self):
        return f"update {self.from_version} → {self.to_version}: {self.status}"

    @property
    def settled(self):
        return self.status in (self.Status.COMPLETED, self.Status.FAILED)


class OnlineUpdate(models.Model):
    """Physical – Advanced Configuration's online update settings (one row), and what the
    last check of the update server found."""

    enabled = models.BooleanField("Online Update check", default=True)
    server_url = models.CharField("Update Server URL", max_length=300, blank=True)
    checked_at = models.DateTimeField(null=True, blank=True)
    check_error = models.CharField(max_length=500, blank=True)
    # the newest release the server offers, when it is newer than the running one
    available_version = models.CharField(max_length=32, blank=True)
    available_notes = models.TextField(blank=True)
    available_archive = models.CharField(max_length=300, blank=True)  # its URL

    def __str__(self):
        return f"online update from {self.server_url or 'nowhere'}"

    @classmethod
    def load(cls):
        return cls.objects.get_or_create(pk=1)[0]


class WebUISettings(models.Model):
    """Physical – Advanced Configuration › WebUI (one row): the host names the WebUI answers
    to besides its own addresses and hostname (appliance.middleware.allowed_hosts)."""

    allowed_hosts = models.CharField("Allowed Host Names", max_length=1000, blank=True)

    def __str__(self):
        return f"WebUI answers to {self.allowed_hosts or 'its own names'}"

    @staticmethod
    def split(text):
        """The names of a comma/space list."""
        return [name for name in text.replace(",", " ").split() if name]

    def names(self):
        return self.split(self.allowed_hosts)

    @classmethod
    def load(cls):
        return cls.objects.get_or_create(pk=1)[0]

    @classmethod
    def stored_names(cls):
        """The allowed names, with one query and without creating the row."""
        text = cls.objects.filter(pk=1).values_list("allowed_hosts", flat=True).first()
        return cls.split(text or "")


# Local Configuration › Security's bounds (the form's and the model's, in one place).
HSTS_MAX_AGE_MIN = 300  # five minutes: shorter says nothing a browser can use
HSTS_MAX_AGE_MAX = 2 * 365 * 24 * 3600  # two years, the longest browsers keep it
SESSION_TIMEOUT_MIN = 1  # minutes
SESSION_TIMEOUT_MAX = 720  # twelve hours: every session ends then anyway (SESSION_COOKIE_AGE)


class SecuritySettings(models.Model):
    """Local Configuration › Security (one row): plain HTTP on 9080, HSTS and the session
    timeout; the certificate itself is a file (maintenance.certificate). Local to this
    appliance, as the guide's 10.1.1 lists Security: never in a backup, never replicated.

    The runner reads `http_redirect` with plain SQL to decide whether it starts the plain-HTTP
    redirect (runner/stack.py http_wanted): keep the table's and the column's names."""

    http_redirect = models.BooleanField(
        "HTTP to HTTPS Redirect", default=False,
        help_text="Answer plain HTTP on port 9080 (the guide's “WebUI - HTTP”, disabled by "
                  "default) with a redirect to HTTPS on 9443; it never serves a page.")
    hsts = models.BooleanField(
        "HTTP Strict Transport Security", default=True,
        help_text="Tell browsers to use only HTTPS for this appliance's name for the time "
                  "below (browsers ignore it for addresses and for a certificate they warn "
                  "about).")
    hsts_max_age = models.PositiveIntegerField(
        "HSTS Max Age (seconds)", default=365 * 24 * 3600,
        validators=[MinValueValidator(HSTS_MAX_AGE_MIN, "At least %(limit_value)s seconds."),
                    MaxValueValidator(HSTS_MAX_AGE_MAX,
                                      "At most %(limit_value)s seconds (two years).")])
    session_timeout = models.PositiveSmallIntegerField(
        "Session Timeout (minutes)", default=30,
        help_text="A session without a request from its user for this long ends; pages that "
                  "refresh themselves do not count.",
        validators=[MinValueValidator(SESSION_TIMEOUT_MIN, "At least %(limit_value)s minute."),
                    MaxValueValidator(SESSION_TIMEOUT_MAX,
                                      "At most %(limit_value)s minutes (twelve hours).")])

    class Meta:
        verbose_name = "security settings"
        verbose_name_plural = "security settings"

    def __str__(self):
        return "WebUI security settings"

    @classmethod
    def load(cls):
        """The row; made at first with LBADMIN_SESSION_TIMEOUT as its session timeout."""
        minutes = -(-settings.SESSION_IDLE_TIMEOUT // 60)  # rounded up
        return cls.objects.get_or_create(pk=1, defaults={
            "session_timeout": min(max(minutes, SESSION_TIMEOUT_MIN), SESSION_TIMEOUT_MAX)})[0]

    @classmethod
    def for_request(cls, request):
        """The row, read once per request (the HSTS and idle-timeout middlewares share it): a
        change holds at once in every process."""
        if not hasattr(request, "_security_settings"):
            request._security_settings = cls.load()
        return request._security_settings


class FirewallLockdown(models.Model):
    """Maintenance › Firewall Lockdown Wizard (one row): whether new connections to the
    WebUI's ports and SSH are admitted only from the administration networks (plus loopback
    and the HA peer). The dataplane worker applies it (maintenance.firewall_tasks). Local to
    this appliance: not replicated (the guide's 10.1.1) and not in a backup."""

    enabled = models.BooleanField("Lock down the WebUI and SSH", default=False)
    networks = models.TextField("Administration networks", blank=True)

    def __str__(self):
        return f"firewall lockdown {'on' if self.enabled else 'off'}"

    @classmethod
    def load(cls):
        return cls.objects.get_or_create(pk=1)[0]

    def as_dict(self):
        return {"enabled": self.enabled, "networks": self.networks}


class FirewallScript(models.Model):
    """Maintenance › Firewall Script (one row): the administrator's own nftables chains, sets
    and rules, which lbadmin wraps in `table inet lbadmin_script`. Saved only once the kernel
    took it. Local to this appliance, like the lockdown."""

    script = models.TextField("Firewall script", blank=True)
    saved_at = models.DateTimeField(null=True, blank=True)

    def __str__(self):
        return "firewall script"

    @classmethod
    def load(cls):
        return cls.objects.get_or_create(pk=1)[0]
