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
# nodeN is .10+N: node190 is .200, below the replicas (.201 up, tests/lab/store.py).
MAX_TARGETS = 190

LABEL = "kolla-lab"
PROFILE_LABEL = f"{LABEL}.profile"
DEPLOY_HOST = "deploy1"
REGISTRY_IMAGE = "registry:2"

MIRROR = "http://deb.debian.org/debian"
SUITES = ("bookworm", "trixie")


@dataclass(frozen=True)
class Profile:
    """What a lab host runs: a Debian suite, and a container engine (none on a fresh deployment host)."""

    suite: str
    engine: str = ""

    @property
    def name(self) -> str:
        return f"{self.suite}-{self.engine}" if self.engine else self.suite

    @property
    def image(self) -> str:
        return f"lab-node:{self.name}"


TARGET_PROFILES = {
    profile.name: profile
    for profile in (
        Profile("bookworm", "docker"),  # docker.io 20.10
        Profile("trixie", "docker"),  # docker.io 26.1
        Profile("trixie", "podman"),  # podman 5.4, no Docker
        Profile("bookworm", "podman"),  # podman 4.3, no Docker
    )
}
DEPLOY_PROFILES = {suite: Profile(suite) for suite in SUITES}
DEFAULT_TARGET = "bookworm-docker"
DEFAULT_DEPLOY = "bookworm"


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
    def layout(self) -> Path:
        return self.root / "layout.json"

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


def target_profiles(spec: str | int) -> list[Profile]:
    """``3`` -> three bookworm-docker targets; ``bookworm-docker:2,trixie-podman:1`` -> in that order."""
    text = str(spec).strip()
    if text.isdigit():
        text = f"{DEFAULT_TARGET}:{text}"
    profiles: list[Profile] = []
    for part in text.split(","):
        name, _, count = part.strip().partition(":")
        if name not in TARGET_PROFILES:
            raise LabError(f"--targets: unknown profile {name!r}: use {', '.join(TARGET_PROFILES)}")
        if not count.isdigit():
            raise LabError(f"--targets: {part.strip()!r} needs a count, as in {name}:2")
        profiles += [TARGET_PROFILES[name]] * int(count)
    target_names(len(profiles))
    return profiles


def deploy_profile(name: str) -> Profile:
    if name not in DEPLOY_PROFILES:
        raise LabError(f"--deploy: unknown profile {name!r}: use {', '.join(DEPLOY_PROFILES)}")
    return DEPLOY_PROFILES[name]


def any_profile(name: str) -> Profile:
    """A target profile, or a suite (a host without an engine)."""
    found = TARGET_PROFILES.get(name) or DEPLOY_PROFILES.get(name)
    if found is None:
        raise LabError(f"unknown profile {name!r}: use {', '.join([*TARGET_PROFILES, *DEPLOY_PROFILES])}")
    return found


def layout(targets: str | int, deploy: str = DEFAULT_DEPLOY) -> dict[str, Profile]:
    """Every host's name and profile: deploy1, then node1..nodeN in the spec's order."""
    profiles = target_profiles(targets)
    return {DEPLOY_HOST: deploy_profile(deploy), **dict(zip(target_names(len(profiles)), profiles))}


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


# The test suite's lab: one deployment host and six targets. Five with Docker, enough for
# "one node of five down": three on bookworm's 20.10, two on trixie's 26; and a Podman node.
# $KOLLA_LAB_TARGETS changes it.
SUITE_TARGETS = "bookworm-docker:3,trixie-docker:2,trixie-podman:1"


def suite_targets() -> str:
    return os.environ.get("KOLLA_LAB_TARGETS") or SUITE_TARGETS
