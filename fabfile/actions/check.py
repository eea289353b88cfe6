"""check-images: every host's images resolve from there, through its engine, with the registry's digests."""

from __future__ import annotations

from collections.abc import Mapping

from ..engine.action import Action, Step
from ..engines import ENGINES
from ..facts.base import Section
from ..images.check_plan import STEP, check_planner
from ..images.model import Image
from ..images.wanted import Wanted
from ..model.context import StepContext
from ..model.inventory import Host, Inventory


class CheckImages(Action):
    """Resolve, on each node, the images it needs, downloading nothing; change nothing."""

    name = step = STEP
    with_engine = True

    def __init__(self, wanted: Wanted, digests: Mapping[Image, str], upstream: Mapping[Image, str], engine: str = "") -> None:
        self.wanted = wanted
        self.planner = check_planner(wanted, digests, upstream, engine)

    def hosts(self, inventory: Inventory) -> tuple[Host, ...]:
        return inventory.targets

    def sections(self, ctx: StepContext) -> tuple[Section, ...]:
        refs = [image.at(ctx.registry) for image in self.wanted.of(ctx.inventory.resolve(ctx.host_name))]
        versions = tuple(section for engine in ENGINES for section in engine.version_sections())
        return (*versions, *(engine.resolve(ctx, refs) for engine in ENGINES if refs))

    def steps(self, ctx: StepContext) -> tuple[Step, ...]:
        return (Step(self.planner, settle=False),)
