"""Signals that let a lower layer tell a higher one something happened, so dependencies run
one way (the receivers connect in their AppConfig.ready()).

- configuration_changed(user, action): a change of the configuration committed; Maintenance
  records a revision (a snapshot of the whole configuration) for it.
- network_applied(): Local Configuration reached the kernel; the data plane places VIPs and
  floating IPs again (their subnets may have come or gone).
"""

from django.dispatch import Signal

configuration_changed = Signal()
# users_changed(user): a WebUI user was added, removed, or given a role or password (committed);
# a Primary sends the users to its Secondary.
users_changed = Signal()
network_applied = Signal()
