"""What a planner needs besides the host's facts: the inventory, the registry, the run's modes."""

from __future__ import annotations

from dataclasses import dataclass, field

from .inventory import Inventory

# verify-registry's probe image, pushed and pulled back on every check.
PROBE_REPOSITORY = "kolla-registry/probe"


@dataclass(frozen=True)
class Modes:
    """How a run treats hosts: ``check`` changes nothing, ``diff`` shows files, ``repair`` fixes conflicts."""

    check: bool = False
    diff: bool = False
    repair: bool = False


@dataclass(frozen=True)
class Limits:
    """How long to wait and how much to keep (``kolla_registry.*`` in Invoke's config)."""

    command_timeout: int = 1800
    docker_wait: int = 60
    backups_kept: int = 10


@dataclass(frozen=True)
class Placement:
    """The registry instance a node is to pull from (registry.hostname), and why it moves, if it does."""

    name: str
    address: str
    note: str = ""
    # Every instance's address in the order the node tries them (its own, its zone's, the others):
    # podman's mirrors, so that a dead instance fails over at pull time.
    mirrors: tuple[str, ...] = ()
    # The node's zone while it pulls from another one (its own has no healthy instance); else "".
    fallback: str = ""


@dataclass(frozen=True)
class Served:
    """What a replica's instance serves with, learnt from the deployment host: the server certificate and
    key its CA issued for it (tls: self-signed; "" otherwise), and the one login file of every instance."""

    cert: str = ""
    key: str = field(default="", repr=False)
    htpasswd: str = field(default="", repr=False)
    # Why they could not be learnt (the deployment host did not answer), else "".
    problem: str = ""


@dataclass(frozen=True)
class StepContext:
    """The inventory, the registry's address (once known), the run's modes and a pending handler."""

    inventory: Inventory
    registry_address: str = ""
    modes: Modes = Modes()
    notified: str | None = None
    limits: Limits = Limits()
    # A secure registry's CA (PEM) and its user's password, learnt from the deployment host.
    ca: str = ""
    password: str = field(default="", repr=False)
    # With registry.hostname: the instance this node's /etc/hosts maps the name to.
    placement: Placement | None = None
    # The host being planned for, by its inventory name (for the fixes a message names).
    host_name: str = ""
    # A replica in deploy-host: what it serves with, as the deployment host issued it (None elsewhere).
    served: Served | None = None

    @property
    def repair(self) -> bool:
        return self.modes.repair

    @property
    def registry(self) -> str:
        return f"{self.registry_address}:{self.inventory.registry.port}"

    @property
    def scheme(self) -> str:
        return "https" if self.inventory.registry.secure else "http"

    @property
    def login(self) -> bool:
        """Whether pulls and pushes log in (registry.auth)."""
        return self.inventory.registry.auth != "off"

    @property
    def probe_image(self) -> str:
        return f"{self.registry}/{PROBE_REPOSITORY}:latest"
