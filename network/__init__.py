"""Local Configuration: interfaces, VLANs, routing, hostname & DNS; the netlink seam."""
