"""The loopback ports of a local control plane, for tests that start another one beside it.

lib.sh reads each port of tests/cluster from one of PORT_VARIABLES (up.sh saves them in
the cluster's ports.env, where down.sh and status.sh find them again). A second cluster
in its own MTLS_CLUSTER_DIR needs every one of them moved, or it collides with the first.
"""

from __future__ import annotations

import socket

PORT_VARIABLES = (
    "MTLS_ETCD_CLIENT_PORT",
    "MTLS_ETCD_PEER_PORT",
    "MTLS_APISERVER_PORT",
    "MTLS_CONTROLLER_MANAGER_PORT",
    "MTLS_SCHEDULER_PORT",
    "MTLS_KWOK_PORT",
)


def unused_loopback_port() -> int:
    """A port on 127.0.0.1 that nothing listens on: connections to it are refused at once."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def port_environment() -> dict[str, str]:
    """Every port variable set to a port of its own that nothing listens on."""
    return {name: str(unused_loopback_port()) for name in PORT_VARIABLES}
