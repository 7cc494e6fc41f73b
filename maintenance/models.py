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
