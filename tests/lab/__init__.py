"""A lab of real Debian hosts for kolla-registry's end-to-end tests.

`python -m tests.lab up` runs a deployment host (deploy1, without Docker) and targets
(node1..nodeN, with Debian's docker.io) as systemd containers on the lab's own Docker
engine, and writes an inventory in the hosts.yaml format. See tests/lab/__main__.py.
"""

from .api import (
    Lab,
    NodeStatus,
    down,
    grown,
    node_ip,
    reset_node,
    start_node,
    status,
    stop_node,
    up,
)
from .config import paths
from .engine import docker
from .errors import LabError, LabUnavailable

__all__ = [
    "Lab",
    "LabError",
    "LabUnavailable",
    "NodeStatus",
    "docker",
    "down",
    "grown",
    "node_ip",
    "paths",
    "reset_node",
    "start_node",
    "status",
    "stop_node",
    "up",
]
