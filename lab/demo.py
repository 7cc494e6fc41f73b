"""`make demo`: the HA pair's lab and two whole appliances on it, until Ctrl-C.

Each appliance (Redis, the WebUI, the workers, beat, and keepalived + conntrackd once its
<data>/ha is configured) runs inside its own namespace of the pair lab on its own addresses,
port 9443, as real appliances have it: the primary in lb (198.51.100.1), the secondary in lb2
(198.51.100.2); both share the client's segment and the servers'. The lab forwards host ports
to them, so a browser on the host reaches both. Everything is printed, and everything started
is stopped, and the lab removed, when it ends.

Environment (the primary's are the usual ones; the secondary's follow from them):
    LBADMIN_DATA_DIR            the primary's data directory; the secondary's is
                                LBADMIN_SECONDARY_DATA_DIR, by default <LBADMIN_DATA_DIR>-secondary
    LBADMIN_HTTPS_PORT          the host port forwarded to the primary's WebUI; the secondary's
                                is LBADMIN_HTTPS_PORT + 1
    LBADMIN_HTTP_PORT           (optional plain-HTTP redirect) likewise + 1 for the secondary
    LBADMIN_LISTEN_ADDRESS      where both forwards listen on the host
    LBADMIN_LAB_PREFIX          the lab's namespace prefix (default lbadmin-)
The primary's supervisor is this process's main thread; the secondary's runs in a thread.
"""

import contextlib
import signal
import socket
import sys
import threading
from pathlib import Path

from pyroute2 import IPRoute

from core import environment
from runner.stack import Stack
from runner.supervisor import Supervisor

from .namespaces import DEMO_PREFIX, LB2_EXTERNAL_ADDRESS, LB_EXTERNAL_ADDRESS, Lab


def host_address():
    """The address a browser elsewhere would use: the one on the default route's interface."""
    with IPRoute() as ipr:
        for route in ipr.get_default_routes(family=2):
            for address in ipr.get_addr(family=2, index=route.get("oif")):
                return address.get("address")
    return "127.0.0.1"


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def secondary_data_dir(data_dir):
    return Path(environment.text("LBADMIN_SECONDARY_DATA_DIR", f"{data_dir}-secondary"))


@contextlib.contextmanager
def supervised_in_a_thread(stack, name="secondary-supervisor"):
    """A stack's supervisor in a thread of this process (the demo's secondary; the tests'
    stacks), stopped when the block ends."""
    stop = threading.Event()
    thread = threading.Thread(target=Supervisor(stack).run, args=(stop,), daemon=True,
                              name=name)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=30)


def describe(title, stack, lab, own_address, address, port, data_dir):
    own = f"https://{own_address}:{stack.own_https_port}/lbadmin/"
    print(f"  {title}: https://{address}:{port}/lbadmin/")
    print(f"    and on its own address in the lab: {own}")
    print(f"    (from the lab's client: ip netns exec {lab.ns('client')} curl -k {own}login/)")
    print("    user:     loadbalancer")
    if stack.generated_password:
        print(f"    password: {stack.generated_password}   <- shown this once; note it")
    elif environment.text("LBADMIN_PASSWORD", ""):
        print("    password: the one in LBADMIN_PASSWORD")
    else:
        print("    password: the one printed at its first start; to set a new one:")
        print(f"              LBADMIN_DATA_DIR={data_dir} .venv/bin/python manage.py "
              "changepassword loadbalancer")
    print(f"    data and logs: {data_dir}")


def main():
    data_dir = environment.data_dir()
    data_dir_2 = secondary_data_dir(data_dir)
    port = environment.https_port()
    port_2 = port + 1
    http_port = environment.http_port()
    listen = environment.listen_address()
    lab = Lab(environment.text("LBADMIN_LAB_PREFIX", DEMO_PREFIX), pair=True)
    lab.down()  # a demo that was killed leaves its lab behind
    # Ctrl-C and SIGTERM stop everything. SIGINT is set explicitly: a shell starting us in the
    # background would otherwise leave it ignored.
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    address = host_address() if listen == "0.0.0.0" else listen  # noqa: S104
    # The WebUI answers only to the appliance's own names (its addresses in the lab) and to
    # those allowed: the host's, by which the host's browser reaches it through the forward.
    allowed = [environment.text("LBADMIN_ALLOWED_HOSTS", ""), address, socket.gethostname()]
    extra_env = {"LBADMIN_ALLOWED_HOSTS": ",".join(filter(None, allowed))}
    try:
        with lab, \
                Stack(data_dir, lab, https_port=port, listen_address=listen,
                      http_port=http_port, extra_env=extra_env) as stack, \
                Stack(data_dir_2, lab, https_port=port_2, listen_address=listen,
                      http_port=http_port + 1 if http_port else 0,
                      extra_env=extra_env,
                      lab_role="lb2") as stack_2:
            stack.wait_for_workers()
            stack_2.wait_for_workers()
            print()
            print("  lbadmin is running: an HA pair's two appliances")
            describe("primary (lb)", stack, lab, LB_EXTERNAL_ADDRESS, address, port, data_dir)
            describe("secondary (lb2)", stack_2, lab, LB2_EXTERNAL_ADDRESS, address, port_2,
                     data_dir_2)
            print("  (the certificates are self-signed: the browser's warning is expected)")
            print(f"  release: {stack.version} from {stack.code_dir}")
            print(f"  lab: {' '.join(lab.namespaces())}")
            print("  Ctrl-C stops everything and removes the lab.")
            print(flush=True)
            # This process is the primary's supervisor (the secondary's runs in a thread):
            # Restart Services and the update's switch-over come to it. A service that exits
            # unasked is restarted with backoff (and shown on Restart Services with its exit
            # status); one the administrator stopped stays down.
            with supervised_in_a_thread(stack_2):
                Supervisor(stack).run()
    except KeyboardInterrupt:
        print("\nstopping: all processes stopped, lab removed.")
        return 0


if __name__ == "__main__":
    sys.exit(main())
