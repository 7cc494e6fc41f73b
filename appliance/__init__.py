"""lbadmin: the Django project (settings, URLs, the Celery app, login, navigation)."""

import sys
from pathlib import Path


def _drop_another_checkouts_import_hook():
    """`make demo` installs the virtualenv editable (`pip install -e`): setuptools adds an import
    hook that serves `appliance.*`, `clusters.*`, ... from the checkout it was installed from,
    for any module the package found on sys.path lacks. A release the supervisor starts from
    <data>/releases/<version> (PYTHONPATH) must import its own code only: through the hook,
    Celery's autodiscovery imported 0.1.0's appliance/tasks.py into 0.2.0's workers."""
    here = Path(__file__).resolve().parent
    for finder in list(sys.meta_path):
        hook = sys.modules.get(getattr(finder, "__module__", ""))
        mapping = getattr(hook, "MAPPING", None)
        if isinstance(mapping, dict) and "appliance" in mapping \
                and Path(mapping["appliance"]).resolve() != here:
            sys.meta_path.remove(finder)


_drop_another_checkouts_import_hook()

from core.version import __version__  # noqa: E402

from .celery import app as celery_app  # noqa: E402

__all__ = ["__version__", "celery_app"]
