"""Local Configuration › License Key and Portal Management: lbadmin needs no key and has no
central portal, and these pages say so plainly instead of offering a form that does nothing."""

from django.conf import settings
from django.shortcuts import render

from core.version import __version__

LICENCE_FILE = "LICENSE"  # the GNU GPL version 3, shipped with the code (every release has it)
SPDX = "GPL-3.0-or-later"  # pyproject.toml's licence


def licence_text():
    """The licence's full text from the running code, or "" if the file is missing (an image
    built without it: the page then links to the FSF's copy instead of pretending)."""
    try:
        return (settings.BASE_DIR / LICENCE_FILE).read_text()
    except OSError:
        return ""


def license_key(request):
    return render(request, "network/license_key.html", {
        "page_title": "License Key", "spdx": SPDX, "version": __version__,
        "licence_text": licence_text(),
    })


def portal_management(request):
    return render(request, "network/portal_management.html", {
        "page_title": "Portal Management", "project_url": settings.LBADMIN_PROJECT_URL,
    })
