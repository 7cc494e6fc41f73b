"""The REST API if this image has django-ninja (pyproject.toml's rest-api extra), else None:
an update replaces code, not the Python packages, so an appliance whose image predates the
REST API takes this release and says at /api/v1/ and on its documentation page what it needs.
"""

try:
    from .rest import api
except ImportError:  # no django-ninja in this image
    api = None

MISSING = ("The REST API needs the django-ninja library, which this appliance's image does not "
           "have: install a new appliance image (an update replaces code, not the Python "
           "packages). API v2 (/api/v2/) and lbcli work without it.")
