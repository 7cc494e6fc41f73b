"""`make demo`: the lab, Redis, the WebUI, the workers and beat, until Ctrl-C.

The WebUI runs inside the lab's lb namespace on the appliance's own addresses (port 9443), as a
real appliance has it; the lab forwards LBADMIN_LISTEN_ADDRESS:LBADMIN_HTTPS_PORT on the host
to it, so a browser on the host reaches it too. Both addresses are printed.
Everything it starts is stopped, and the lab removed, when it ends.
"""

import signal
import socket
import sys

from pyroute2 import IPRoute

from core import environment
from runner.stack import Stack
from runner.supervisor import Supervisor

from .namespaces import DEMO_PREFIX, LB_EXTERNAL_ADDRESS, Lab


def host_address():
    """The address a browser elsewhere would use: the one on the default route's interface."""
    with IPRoute() as ipr:
        for route in ipr.get_default_routes(family=2):
            for address in ipr.get_addr(family=2, index=route.get("oif")):
                return address.get("address")
    return "127.0.0.1"


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def main():
    data_dir = environment.data_dir()
    port = environment.https_port()
    listen = environment.listen_address()
    lab = Lab(environment.text("LBADMIN_LAB_PREFIX", DEMO_PREFIX))
    lab.down()  # a demo that was killed leaves its lab behind
    # Ctrl-C and SIGTERM stop everything. SIGINT is set explicitly: a shell starting us in the
    # background would otherwise leave it ignored.
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    address = host_address() if listen == "0.0.0.0" else listen  # noqa: S104
    # The WebUI answers only to the appliance's own names (its addresses in the lab) and to
    # those allowed: the host's, by which the host's browser reaches it through the forward.
    allowed = [environment.text("LBADMIN_ALLOWED_HOSTS", ""), address, socket.gethostname()]
    try:
        with lab, Stack(data_dir, lab, https_port=port, listen_address=listen,
                        http_port=environment.http_port(),
                        extra_env={"LBADMIN_ALLOWED_HOSTS": ",".join(filter(None, allowed))},
                        ) as stack:
            stack.wait_for_workers()
            print()
            own = f"https://{LB_EXTERNAL_ADDRESS}:{stack.own_https_port}/lbadmin/"
            print(f"  lbadmin is running: https://{address}:{port}/lbadmin/")
            print(f"  and on the appliance's own address in the lab: {own}")
            print(f"    (from the lab's client: ip netns exec {lab.ns('client')} "
                  f"curl -k {own}login/)")
            print("  (the certificate is self-signed: the browser's warning is expected)")
            print("  user:     loadbalancer")
            if stack.generated_password:
                print(f"  password: {stack.generated_password}   <- shown this once; note it")
            elif environment.text("LBADMIN_PASSWORD", ""):
                print("  password: the one in LBADMIN_PASSWORD")
            else:
                print("  password: the one printed at first start; to set a new one:")
                print(f"            LBADMIN_DATA_DIR={data_dir} .venv/bin/python manage.py "
                      "changepassword loadbalancer")
            print(f"  release: {stack.version} from {stack.code_dir}")
            print(f"  lab: {' '.join(lab.namespaces())}")
            print(f"  data and logs: {data_dir}")
            print("  Ctrl-C stops everything and removes the lab.")
            print(flush=True)
            # This process is the supervisor: Restart Services and the update's switch-over
            # come to it. A service that exits unasked is restarted with backoff (and shown on
            # Restart Services with its exit status); one the administrator stopped stays down.
            Supervisor(stack).run()
    except KeyboardInterrupt:
        print("\nstopping: all processes stopped, lab removed.")
        return 0


if __name__ == "__main__":
    sys.exit(main())
