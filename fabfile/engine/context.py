"""What a planner needs besides the host's facts: the inventory, the registry, the run's modes."""

from __future__ import annotations

from dataclasses import dataclass

from ..inventory import Inventory

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
class StepContext:
    """The inventory, the registry's address (once known), the run's modes and a pending handler."""

    inventory: Inventory
    registry_address: str = ""
    modes: Modes = Modes()
    notified: str | None = None
    limits: Limits = Limits()

    @property
    def repair(self) -> bool:
        return self.modes.repair

    @property
    def registry(self) -> str:
        return f"{self.registry_address}:{self.inventory.registry.port}"

    @property
    def probe_image(self) -> str:
        return f"{self.registry}/{PROBE_REPOSITORY}:latest"
