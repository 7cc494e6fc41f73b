from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from core.version import __version__
from maintenance import updates


class Command(BaseCommand):
    help = ("Build a signed update archive of this checkout (archive, .sha256, .sig), or make a "
            "signing key with --make-key (its public half goes into <data>/update-keys/).")

    def add_arguments(self, parser):
        parser.add_argument("--release-version",
                            help="the version the archive carries, e.g. 0.2.0")
        parser.add_argument("--min-from", default=__version__,
                            help="the oldest version it updates (default: the running one)")
        parser.add_argument("--notes", default="", help="release notes")
        parser.add_argument("--key", default="release-key.pem", help="private key (PEM)")
        parser.add_argument("--out", default="dist", help="where the three files go")
        parser.add_argument("--make-key", action="store_true")

    def handle(self, *args, **options):
        key = Path(options["key"])
        if options["make_key"]:
            public = settings.DATA_DIR / "update-keys" / f"{key.stem}.pub"
            try:
                updates.make_key(key, public)
            except (OSError, updates.UpdateError) as error:
                raise CommandError(str(error)) from error
            self.stdout.write(f"private key {key}; trusted public key {public}")
            return
        if not (options["release_version"] or "").strip():
            raise CommandError(
                "Say which version to build: manage.py lbadmin_release --release-version x.y.z "
                "[--notes \"...\"] (from the Makefile: make release VERSION=x.y.z "
                "[NOTES=\"...\"]).")
        try:
            updates.version_tuple(options["release_version"])
        except updates.UpdateError as error:
            raise CommandError(f"{error} Give the version as x.y.z, e.g. --release-version "
                               "0.2.0 (make release VERSION=0.2.0).") from error
        if not key.is_file():
            raise CommandError(f"No signing key {key}: make one with manage.py lbadmin_release "
                               f"--make-key --key {key} (make release does it on first use).")
        try:
            path = updates.build_release(settings.BASE_DIR, options["release_version"],
                                         options["min_from"], options["notes"],
                                         key.read_bytes(), options["out"])
        except (OSError, updates.UpdateError) as error:
            raise CommandError(str(error)) from error
        self.stdout.write(f"{path}\n{path}.sha256\n{path}.sig")
