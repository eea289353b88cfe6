"""prune-registry: old releases' tags deleted from the registry, then their space freed."""

from __future__ import annotations

from ..engine.action import Action, Step
from ..engines.docker import facts as docker_facts
from ..facts.base import Section, files
from ..images.model import Image
from ..images.prune_plan import Pins
from ..images.prune_report import STEP
from ..images.prune_run import prune_planner, scan_query
from ..model.context import StepContext
from ..registry import facts as registry_facts
from ..registry.collect import GC_PENDING
from ..registry.readonly import readers_section


class PruneRegistry(Action):
    """Keep ``current``, what the kept releases name (``pins``) and the ``keep`` newest other images of each
    repository of the list (of every repository with ``every``); delete and collect the rest."""

    name = step = STEP
    serving = True

    def __init__(self, current: list[Image], keep: int, every: bool = False, pins: Pins | None = None) -> None:
        self.current = current
        self.keep = keep
        self.every = every
        self.pins = pins

    def sections(self, ctx: StepContext) -> tuple[Section, ...]:
        """The registry container as create-registry plans it, pending garbage, and every tag."""
        return (
            docker_facts.VERSION,
            *docker_facts.CONFIG,
            # All create-registry compares (an S3 store's env file too): the container must be as it makes it.
            *registry_facts.container_sections(ctx),
            files(GC_PENDING),
            scan_query(ctx),
            readers_section(ctx),
        )

    def steps(self, ctx: StepContext) -> tuple[Step, ...]:
        return (Step(prune_planner(self.current, self.keep, self.every, self.pins), settle=False),)
