"""The running release's version. `make release` writes this file into the archive with the
release's own version, so the code of a staged release knows what it is."""

__version__ = "0.1.0"
