"""`lbcli` on the appliance: the commercial appliance's command, taking the same actions as
API v2 as `--action X --option value` arguments and printing the same JSON.

    lbcli --action add-vip --vip VNA --ip 198.51.100.100 --ports 12000,12100 --forwarding masq
    lbcli --action halt --vip VNA --rip PrimaryCluster

It is the virtualenv's console script (`.venv/bin/lbcli`) and `manage.py lbcli`. Like
manage.py it finds the appliance's data directory in LBADMIN_DATA_DIR (default: the
checkout's `var/`, where `make demo` keeps it). Whoever can run it there can read the whole
database, so it acts with the config role, as "lbcli (<system user>)" in the User Log. Run as
root, it first becomes the owner of the data directory (the service user, `lbadmin`), so the
files it may create there (SQLite's journal) stay the services' own.

Exit status: 0 when the call succeeded (or found what it adds already there: `exists`, or
what it removes already gone: `missing`), 1 when it failed, 2 when it was malformed (fatal).
"""

import json
import os
import sys

USAGE = ("usage: lbcli --action <action> [--<option> <value> ...]\n"
         "e.g.   lbcli --action list --function virtual\n"
         "       lbcli --action halt --vip VNA --rip PrimaryCluster")


def parse(argv):
    """`--action halt --vip VNA --rip=PrimaryCluster` → {"action": "halt", "vip": "VNA", …};
    an option without a value gets "" (the action then says what it needs). ValueError for
    a word that is not an option's value."""
    call, name = {}, None
    for word in argv:
        if word.startswith("--") and len(word) > 2:
            if name is not None:
                call[name] = ""
            name, equals, value = word[2:].partition("=")
            if equals:
                call[name], name = value, None
        elif name is not None:
            call[name], name = word, None
        else:
            raise ValueError(f"“{word}” is not an option (--name value) nor its value.")
    if name is not None:
        call[name] = ""
    return call


def become_data_dir_owner(data_dir):
    """As root, take the data directory owner's uid and gid (no other group): what lbcli
    writes there then stays readable by the services. umask 077, as the services run."""
    os.umask(0o077)
    if os.geteuid() != 0:
        return
    owner = os.stat(data_dir)
    if owner.st_uid == 0:
        return
    os.setgroups([])
    os.setgid(owner.st_gid)
    os.setuid(owner.st_uid)


def run(argv, out=sys.stdout):
    """Run one lbcli call from `argv` (Django set up); print the answer; the exit status."""
    # here, not at the top: models can be imported only once django.setup() ran (main)
    from core import roles

    from . import lbcli

    try:
        call = parse(argv)
    except ValueError as problem:
        print(f"lbcli: {problem}\n{USAGE}", file=sys.stderr)
        return 2
    if not call:
        print(USAGE, file=sys.stderr)
        return 2
    answers, _ = lbcli.run([call], lbcli.local_user(), roles.CONFIG, via="lbcli")
    print(json.dumps({"lbapi": [{"itteration": [{"lbcli": answers}]}]}, indent=2), file=out)
    status = answers[0]["status"]
    return 2 if status == lbcli.FATAL else 1 if status == lbcli.FAILED else 0


def main():
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "appliance.settings")
    from core import environment

    become_data_dir_owner(environment.data_dir())
    import django

    django.setup()
    sys.exit(run(sys.argv[1:]))
