"""The lab: the guide's network in namespaces, its cluster nodes, and `make demo` over it.

Test and demo tooling only: nothing shipped imports it (import-linter says so) and a release
archive leaves it out.
"""

from .namespaces import (
    CLIENT_ADDRESS,
    DEMO_PREFIX,
    FLOATING_IP,
    GUIDE_PORTS,
    LB2_EXTERNAL_ADDRESS,
    LB2_INTERNAL_ADDRESS,
    LB_EXTERNAL_ADDRESS,
    LB_INTERNAL_ADDRESS,
    PRIMARY_ADDRESS,
    SECONDARY_ADDRESS,
    VIP,
    Lab,
    existing_namespaces,
    remove_leftover_labs,
    stop_processes,
    unique_test_prefix,
)

__all__ = [
    "CLIENT_ADDRESS", "DEMO_PREFIX", "FLOATING_IP", "GUIDE_PORTS", "LB2_EXTERNAL_ADDRESS",
    "LB2_INTERNAL_ADDRESS", "LB_EXTERNAL_ADDRESS", "LB_INTERNAL_ADDRESS", "PRIMARY_ADDRESS",
    "SECONDARY_ADDRESS", "VIP", "Lab", "existing_namespaces", "remove_leftover_labs",
    "stop_processes", "unique_test_prefix",
]
