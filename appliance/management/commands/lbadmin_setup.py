import os

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand

from appliance import services
from maintenance import certificate


class Command(BaseCommand):
    help = (
        "Prepare the data directory: migrate the database, make the WebUI certificate, and "
        "create the loadbalancer user (LBADMIN_PASSWORD, or a generated password printed once)."
    )

    def handle(self, *args, **options):
        call_command("migrate", interactive=False, verbosity=0)
        if certificate.ensure_certificate(settings.DATA_DIR):
            self.stdout.write(f"Made a self-signed WebUI certificate in {settings.DATA_DIR}")
        password = services.ensure_appliance_user(os.environ.get("LBADMIN_PASSWORD", ""))
        if password is None:
            self.stdout.write(f"User {settings.APPLIANCE_USER} exists; its password is unchanged.")
        elif os.environ.get("LBADMIN_PASSWORD"):
            self.stdout.write(f"Created user {settings.APPLIANCE_USER} with LBADMIN_PASSWORD.")
        else:
            # Printed once: only the hash is stored.
            self.stdout.write(f"LBADMIN_USER={settings.APPLIANCE_USER}")
            self.stdout.write(f"LBADMIN_GENERATED_PASSWORD={password}")
