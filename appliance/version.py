"""Kept for supervisors of release 0.1.0: they read a release's version from this file, as
text, when they switch to it. `make release` writes the same version here and in
core/version.py, the one the code imports (tests/unit/test_layout.py checks they agree)."""

__version__ = "0.1.0"
