"""`manage.py lbcli --action X --option value …`: the appliance's lbcli (api.lbcli_command)."""

import sys

from django.core.management.base import BaseCommand

from api import lbcli_command
from core import environment


class Command(BaseCommand):
    help = "The commercial appliance's lbcli: --action X --option value … (see api.lbcli)."

    def run_from_argv(self, argv):
        # lbcli's options are the action's own (--vip, --rip, …), not this command's: they go
        # to lbcli's parser as they are, never through argparse
        lbcli_command.become_data_dir_owner(environment.data_dir())
        sys.exit(lbcli_command.run(argv[2:]))

    def handle(self, *args, **options):  # called only through call_command
        raise SystemExit(lbcli_command.run(list(args)))
