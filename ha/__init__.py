"""High-Availability Configuration: the clustered pair (keepalived + conntrackd)."""
