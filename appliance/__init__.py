"""lbadmin: the appliance project (settings, Celery app, navigation) and Local Configuration."""

from .celery import app as celery_app
from .version import __version__

__all__ = ["__version__", "celery_app"]
