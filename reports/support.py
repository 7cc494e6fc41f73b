"""Support: Support Download (one archive for a bug report), Contact Us, Useful Links, and
the appliance's own copy of the project's README, which those pages point into."""

import re

from django.conf import settings
from django.http import HttpResponse
from django.shortcuts import render
from django.utils.text import slugify

from core.audit import record_audit

from .archive import build_support_archive

README_LIMIT = 512 * 1024  # bytes of README.md read (it is a few tens of KiB)
HEADING = re.compile(r"^(#{1,3}) (.+)$", re.MULTILINE)


def support_download(request):
    """The page, and with `?download` the archive itself (recorded in the User Log)."""
    if "download" in request.GET:
        name, data = build_support_archive()
        record_audit(request.user, f"downloaded the support archive {name}")
        response = HttpResponse(data, content_type="application/gzip")
        response["Content-Disposition"] = f'attachment; filename="{name}"'
        return response
    return render(request, "reports/support_download.html", {"page_title": "Support Download"})


def readme_sections():
    """[(anchor, title, text)] of the project's README.md, or [] when this installation has
    none (a release archive may leave it out)."""
    try:
        with open(settings.BASE_DIR / "README.md", encoding="utf-8", errors="replace") as handle:
            text = handle.read(README_LIMIT)
    except OSError:
        return []
    sections, starts = [], list(HEADING.finditer(text))
    for n, heading in enumerate(starts):
        end = starts[n + 1].start() if n + 1 < len(starts) else len(text)
        body = text[heading.end():end].strip("\n")
        sections.append((slugify(heading.group(2)) or f"section-{n}", heading.group(2), body))
    return sections


def documentation(request):
    """The README, section by section, so the other Support pages can link into it."""
    return render(request, "reports/documentation.html", {
        "page_title": "Documentation", "sections": readme_sections()})


def _project(request):
    return {"project_url": settings.LBADMIN_PROJECT_URL,
            "sections": [(anchor, title) for anchor, title, _ in readme_sections()]}


def contact(request):
    return render(request, "reports/contact.html", {"page_title": "Contact Us",
                                                    **_project(request)})


def useful_links(request):
    return render(request, "reports/useful_links.html", {"page_title": "Useful Links",
                                                         **_project(request)})
