"""sync-images: the image list into the local registry on the deployment host, digests compared first."""

from __future__ import annotations

from ..engine.action import Action, Step
from ..engines.docker import facts as docker_facts
from ..facts.base import Section
from ..images.model import Image
from ..images.sync_plan import SyncSource, manifests_query, sync_planner
from ..images.sync_report import STEP
from ..model.context import StepContext


class SyncImages(Action):
    """Copy what the local registry lacks of ``images`` from ``source``, blob by blob, on the deployment host."""

    name = step = STEP
    serving = True

    def __init__(self, images: list[Image], source: SyncSource) -> None:
        self.images = images
        self.source = source

    def sections(self, ctx: StepContext) -> tuple[Section, ...]:
        # Docker's version only for the recap: the copy itself does not use Docker.
        return (docker_facts.VERSION, manifests_query(self.images, self.source, ctx))

    def steps(self, ctx: StepContext) -> tuple[Step, ...]:
        return (Step(sync_planner(self.images, self.source), settle=False),)
