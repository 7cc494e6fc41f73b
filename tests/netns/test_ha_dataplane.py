"""The data plane's apply in an HA pair (core.pairing has an owner: ha.vrrp's), driven directly
in a throwaway lab (unique prefix, documentation addresses, always removed): the worker places no
VIP or floating IP itself, removes those it placed while standalone, renders keepalived.conf
holding them, and loads the pair's `ct state invalid` drop; standalone again, it places them."""

from types import SimpleNamespace

import pytest

from clusters import services
from clusters.models import RealServer, VirtualService
from core import pairing
from ha import vrrp
from lab import FLOATING_IP, GUIDE_PORTS, LB_EXTERNAL_ADDRESS, PRIMARY_ADDRESS, VIP
from network import netlink

from .conftest import inside

pytestmark = pytest.mark.netns
USER = "tester"
PEER = "198.51.100.3"  # a documentation address no namespace holds


def lb_addresses(lab):
    """{address: "vip", "floating" or ""} of the lb namespace's addresses (who placed them:
    the dataplane worker marks its own; keepalived's and the admin's are "")."""
    with inside(lab.ns("lb")):
        return {entry["cidr"].split("/")[0]: entry["role"]
                for link in netlink.list_interfaces() for entry in link["marked"]}


def test_a_pair_places_no_address_itself_and_hands_them_to_keepalived(dataplane, lab, settings,
                                                                       tmp_path, monkeypatch):
    service = VirtualService(label="VNA", vip=VIP, ports=",".join(map(str, GUIDE_PORTS)))
    service.full_clean()
    service = services.do_save_service(service, USER)
    server = RealServer(service=service, label="PrimaryCluster", ip=PRIMARY_ADDRESS)
    server.full_clean()
    services.do_save_real_server(server, USER)
    services.do_add_floating_ip(FLOATING_IP, USER)

    registered = list(pairing._owners)
    pairing._owners.clear()  # standalone (whatever the ha app registered)
    try:
        dataplane.apply()
        assert lb_addresses(lab)[VIP] == "vip" and lb_addresses(lab)[FLOATING_IP] == "floating"
        assert "pair_input" not in dataplane.nft("list", "table", "ip", "lbadmin")

        # becoming a pair's node: a full apply, the worker's own addresses go, keepalived's
        # file holds them, on the interfaces whose subnets hold them
        settings.DATA_DIR = tmp_path
        monkeypatch.setattr(vrrp, "router_id", lambda: "lb1")
        pair = SimpleNamespace(role="primary", local_ip=LB_EXTERNAL_ADDRESS, peer_ip=PEER,
                               virtual_router_id=51, paired=True)
        pairing.register_address_owner(vrrp.AddressOwner(lambda: pair))
        result = dataplane.apply()
        assert result["mode"] == "full"
        present = lb_addresses(lab)
        assert VIP not in present and FLOATING_IP not in present
        conf = (tmp_path / "ha" / "keepalived.conf").read_text()
        # labelled: applying Local Configuration leaves keepalived's addresses alone
        assert f"        {VIP}/32 dev eth1 label eth1:ha\n" in conf
        assert f"        {FLOATING_IP}/32 dev eth0 label eth0:ha\n" in conf
        assert "    interface eth1\n" in conf and "    unicast_src_ip 198.51.100.1\n" in conf
        assert (tmp_path / "ha" / "conntrackd.conf").stat().st_mode & 0o777 == 0o600
        table = dataplane.nft("list", "table", "ip", "lbadmin")
        assert "ct state invalid ip daddr @pair_vips drop" in table
        assert VIP in table.split("set pair_vips", 1)[1].split("}", 1)[0]
        assert dataplane.compare()["matches"]

        # a change of the VIPs re-renders the file and places nothing either
        service.vip = "198.51.100.101"
        services.do_save_service(service, USER)
        dataplane.apply()
        conf = (tmp_path / "ha" / "keepalived.conf").read_text()
        assert "198.51.100.101/32 dev eth1 label eth1:ha" in conf and f"{VIP}/32" not in conf
        assert "198.51.100.101" not in lb_addresses(lab)

        # standalone again: the worker places them and the pair's chain goes
        pairing._owners.clear()
        assert dataplane.apply()["mode"] == "full"
        present = lb_addresses(lab)
        assert present["198.51.100.101"] == "vip" and present[FLOATING_IP] == "floating"
        assert "pair_input" not in dataplane.nft("list", "table", "ip", "lbadmin")
    finally:
        pairing._owners[:] = registered
