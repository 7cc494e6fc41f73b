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
