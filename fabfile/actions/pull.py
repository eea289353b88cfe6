"""pull-images: every target pre-pulls its images from the local registry, like ``kolla-ansible pull``."""

from __future__ import annotations

from collections.abc import Mapping

from ..engine.action import Action, Step
from ..engines import ENGINES
from ..facts.base import Section
from ..images.model import Image, Manifest
from ..images.pull_plan import STEP, pull_planner
from ..model.context import StepContext
from ..model.facts import HostFacts
from ..model.inventory import Host, Inventory
from ..registry.api import answer, local_base, query


class PullImages(Action):
    """Pull on each node what it lacks of ``images`` (by digest), ``per_node`` at once."""

    name = step = STEP
    with_engine = True

    def __init__(
        self, images: list[Image], digests: Mapping[Image, str], per_node: int, retries: int, engine: str = ""
    ) -> None:
        self.planner = pull_planner(images, digests, per_node, retries, engine)

    def hosts(self, inventory: Inventory) -> tuple[Host, ...]:
        return inventory.targets

    def sections(self, ctx: StepContext) -> tuple[Section, ...]:
        engines = tuple(section for engine in ENGINES for section in (*engine.version_sections(), engine.held_images()))
        return engines

    def steps(self, ctx: StepContext) -> tuple[Step, ...]:
        return (Step(self.planner, settle=False),)


class RegistryDigests(Action):
    """The registry's digest of each image, asked once from the deployment host (quietly)."""

    name = step = "registry-digests"
    serving = True
    quiet = True

    def __init__(self, images: list[Image]) -> None:
        self.images = images

    def sections(self, ctx: StepContext) -> tuple[Section, ...]:
        return (query("manifests", ctx, {"manifests": [[local_base(ctx), i.path, i.tag] for i in self.images]}),)

    def data(self, facts: HostFacts, ctx: StepContext) -> dict:
        found = [Manifest.from_answer(item) for item in answer(facts, "manifests").get("manifests") or []]
        return {"digests": {image.name: m.digest for image, m in zip(self.images, found) if m.exists and m.digest}}
