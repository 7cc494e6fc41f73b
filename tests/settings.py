"""Test settings: the real settings over a throw-away data directory.

The directory is made before appliance.settings reads LBADMIN_DATA_DIR, and removed when the
process that made it exits — a pytest run, or a benchmark or script that uses these settings.
"""

import atexit
import os
import shutil
import tempfile

OWNED_DATA_DIR = None  # made here, so removed at the end; a given directory is left alone
if "LBADMIN_DATA_DIR" not in os.environ:
    OWNED_DATA_DIR = os.environ["LBADMIN_DATA_DIR"] = tempfile.mkdtemp(prefix="lbadmin-test-")
    atexit.register(shutil.rmtree, OWNED_DATA_DIR, ignore_errors=True)

from appliance.settings import *  # noqa: E402, F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast, tests only
UPDATE_ALLOW_LOOPBACK = True  # the online update tests serve their releases on 127.0.0.1
