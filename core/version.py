"""The running release's version. `make release` writes this file (and appliance/version.py,
which supervisors of 0.1.0 read) into the archive with the release's own version, so the code
of a staged release knows what it is."""

__version__ = "0.1.0"
