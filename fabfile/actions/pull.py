"""pull-images: every target pre-pulls its images from the local registry, like ``kolla-ansible pull``."""

from __future__ import annotations

from collections.abc import Sequence

from ..engine.action import Action, Step
from ..engines import ENGINES
from ..facts.base import Section
from ..images.model import Image, Manifest
from ..images.pull_plan import STEP, PullOrder, pull_planner
from ..model.context import StepContext
from ..model.facts import HostFacts
from ..model.inventory import Host, Inventory
from ..registry.api import answer, local_base, query


class PullImages(Action):
    """Pull on each node what it lacks of its images (by digest), ``per_node`` at once."""

    name = step = STEP
    with_engine = True

    def __init__(self, order: PullOrder) -> None:
        self.planner = pull_planner(order)

    def hosts(self, inventory: Inventory) -> tuple[Host, ...]:
        return inventory.targets

    def sections(self, ctx: StepContext) -> tuple[Section, ...]:
        """Each engine's version and images; with a TLS registry and a login, what its config says of the
        registry (no login goes to an engine that would not check the registry's certificate)."""
        secure = ctx.inventory.registry.secure and ctx.login
        return tuple(
            section
            for engine in ENGINES
            for section in (*engine.version_sections(), engine.held_images(), *(engine.status_sections(ctx) if secure else ()))
        )

    def steps(self, ctx: StepContext) -> tuple[Step, ...]:
        return (Step(self.planner, settle=False),)


class RegistryDigests:
    """The registry's digest and size of each image (and the upstream's digest, given its base URL and
    logins), in one query from the deployment host."""

    def __init__(self, images: list[Image], upstream: str = "", logins: Sequence[list] = ()) -> None:
        self.images = images
        self.upstream = upstream
        self.logins = logins

    def sections(self, ctx: StepContext) -> tuple[Section, ...]:
        """The query, once the registry's address is known (before, it would ask no registry)."""
        if not ctx.registry_address:
            return ()
        bases = [local_base(ctx), *([self.upstream] if self.upstream else [])]
        queries = [[base, image.path, image.tag] for base in bases for image in self.images]
        return (query("manifests", ctx, {"manifests": queries}, self.logins),)

    def found(self, facts: HostFacts, ctx: StepContext) -> tuple[dict[Image, str], dict[Image, str], dict[Image, int]]:
        """The registry's digests, the upstream's, and the registry's sizes, of the images it holds."""
        answered = [Manifest.from_answer(item) for item in answer(facts, "manifests").get("manifests") or []]
        local, upstream = answered[: len(self.images)], answered[len(self.images) :]
        sizes = {image: m.size for image, m in zip(self.images, local, strict=False) if m.exists and m.size}
        return _digests(self.images, local), _digests(self.images, upstream), sizes


def _digests(images: list[Image], found: list[Manifest]) -> dict[Image, str]:
    return {image: m.digest for image, m in zip(images, found, strict=False) if m.exists and m.digest}
