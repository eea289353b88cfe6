"""Where the lab keeps its state, and the fixed shape of its network and hosts."""

import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from .errors import LabError

ROOT_ENV = "KOLLA_LAB_ROOT"
DEFAULT_ROOT = Path("/var/lib/kolla-registry-lab")

NETWORK = "kolla-lab"
# Outside every pool the nodes' own dockerd draws from (172.17-31.0.0/16, 192.168.0.0/16).
SUBNET = ipaddress.ip_network("10.77.0.0/24")
FIRST_HOST = 10
MAX_TARGETS = 200

LABEL = "kolla-lab"
DEPLOY_HOST = "deploy1"
BASE_IMAGE = "lab-node:base"
TARGET_IMAGE = "lab-node:target"
REGISTRY_IMAGE = "registry:2"

MIRROR = "http://deb.debian.org/debian"
SUITE = "bookworm"


@dataclass(frozen=True)
class Paths:
    """Every file and directory under the lab's state root."""

    root: Path

    @property
    def engine(self) -> Path:
        return self.root / "engine"

    @property
    def socket(self) -> Path:
        return self.engine / "docker.sock"

    @property
    def pidfile(self) -> Path:
        return self.engine / "docker.pid"

    @property
    def engine_log(self) -> Path:
        return self.engine / "dockerd.log"

    @property
    def daemon_json(self) -> Path:
        return self.engine / "daemon.json"

    @property
    def key(self) -> Path:
        return self.root / "ssh" / "id_ed25519"

    @property
    def known_hosts(self) -> Path:
        return self.root / "ssh" / "known_hosts"

    @property
    def inventory(self) -> Path:
        return self.root / "inventory.yaml"

    @property
    def rootfs(self) -> Path:
        return self.root / "rootfs"

    @property
    def archive(self) -> Path:
        return self.root / "images" / "registry-2.tar"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def lock(self) -> Path:
        return self.root / "lock"


def paths() -> Paths:
    """The lab's paths, under $KOLLA_LAB_ROOT or /var/lib/kolla-registry-lab."""
    return Paths(Path(os.environ.get(ROOT_ENV) or DEFAULT_ROOT).absolute())


def target_names(count: int) -> list[str]:
    """node1..nodeN."""
    if not 1 <= count <= MAX_TARGETS:
        raise LabError(f"--targets must be between 1 and {MAX_TARGETS}, not {count}")
    return [f"node{i}" for i in range(1, count + 1)]


def host_number(name: str) -> int:
    """0 for the deployment host, N for nodeN."""
    if name == DEPLOY_HOST:
        return 0
    suffix = name.removeprefix("node")
    if name.startswith("node") and suffix.isdigit() and 1 <= int(suffix) <= MAX_TARGETS:
        return int(suffix)
    raise LabError(f"{name!r} is not a lab host: use {DEPLOY_HOST} or node1..node{MAX_TARGETS}")


def node_ip(name: str) -> str:
    """Each host's fixed address, so that a recreated host keeps its inventory entry."""
    return str(SUBNET[FIRST_HOST + host_number(name)])


def gateway() -> str:
    return str(SUBNET[1])


def image_for(name: str) -> str:
    """The deployment host starts without Docker; targets come with it."""
    return BASE_IMAGE if host_number(name) == 0 else TARGET_IMAGE


# The test suite's lab: one deployment host and five targets, enough for
# "one node of five down"; $KOLLA_LAB_TARGETS changes it.
SUITE_TARGETS = 5


def suite_targets() -> int:
    return int(os.environ.get("KOLLA_LAB_TARGETS") or SUITE_TARGETS)
