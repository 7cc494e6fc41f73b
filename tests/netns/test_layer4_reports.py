"""Reports › Layer 4 Status and Layer 4 Current Connections on a stack of their own, with a
real connection held open from the lab's client through the VIP: the page reads it from the
kernel's conntrack table (through the dataplane worker), names its real server by its mark,
counts it, and loses it when Halt cuts that server's connections."""

import re

import pytest

from lab import PRIMARY_ADDRESS, VIP
from tests.conftest import running_stack
from tests.stacks import WebUISession, in_stack, wait_for

from .test_recovery import PORT, SET_STATE, SETUP, served_by
from .traffic import HeldConnection

pytestmark = pytest.mark.netns
CLIENT = "198.51.100.10"
CONNECTIONS = "/lbadmin/reports/layer4-connections/"
STATUS = "/lbadmin/reports/layer4-status/"


def connection_rows(page):
    return re.findall(r'<tr class="connection[^"]*" data-client="([^"]+)">(.*?)</tr>', page,
                      re.S)


def server_row(page, label):
    row = page[page.index(f'data-real-server="{label}"'):]
    return row[:row.index("</tr>")]


def counts(row):
    return (int(re.search(r'<td class="active">(\d+)</td>', row).group(1)),
            int(re.search(r'<td class="inactive">(\d+)</td>', row).group(1)))


def test_a_held_connection_shows_with_its_real_server_and_goes_when_halt_cuts_it():
    with running_stack() as stack:
        server = in_stack(stack, SETUP)
        assert wait_for(lambda: served_by(stack) == "primary", 20)
        web = WebUISession(stack.https_port)
        web.log_in(stack.generated_password)
        try:
            with HeldConnection(stack.lab, VIP, PORT) as held:
                assert held.greeting.startswith("primary")

                def shown():
                    return [(client, row) for client, row in connection_rows(
                        web.get(CONNECTIONS, client=CLIENT)) if "ESTABLISHED" in row]

                rows = wait_for(shown, 10)
                assert len(rows) == 1, rows
                client, row = rows[0]
                assert client.startswith(f"{CLIENT}:")
                assert f"PrimaryCluster · {PRIMARY_ADDRESS}:{PORT}" in row
                assert f"{VIP}:{PORT}" in row and "VNA" in row

                # Layer 4 Status: Online, one active connection (the sampler runs every 2 s)
                def status_row():
                    row = server_row(web.get(STATUS), "PrimaryCluster")
                    return row if counts(row)[0] == 1 else None

                row = wait_for(status_row, 10, every=0.5)
                assert row, server_row(web.get(STATUS), "PrimaryCluster")
                assert "Online" in row and ">100<" in row  # the state, the weight
                assert "Online since" in row

                # Halt cuts by mark: the connection is gone from the kernel and the page
                in_stack(stack, SET_STATE, server, "halt", 0)
                assert wait_for(lambda: not shown(), 10)
                assert held.talk() in ("CLOSED", "ERROR ConnectionResetError",
                                       "ERROR BrokenPipeError")
                halted = wait_for(lambda: "Online (halt)" in server_row(
                    web.get(STATUS), "PrimaryCluster"), 10)
                assert halted
        finally:
            web.close()
