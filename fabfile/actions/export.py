"""export-images: the images of a lock (or of the image list) from the upstream into an OCI layout on this machine."""

from __future__ import annotations

from ..engine.action import Action, Step
from ..images.export import STEP, Bundle, export_planner
from ..images.model import upstream_logins
from ..model.context import StepContext
from ..model.inventory import HERE, Host, Inventory


class ExportImages(Action):
    """Write ``bundle`` here, from the upstream: the operator's machine is the one connected."""

    name = step = STEP
    local = True
    needs_registry = False

    def __init__(self, bundle: Bundle) -> None:
        self.bundle = bundle

    def hosts(self, inventory: Inventory) -> tuple[Host, ...]:
        return (HERE,)

    def steps(self, ctx: StepContext) -> tuple[Step, ...]:
        logins = upstream_logins(self.bundle.settings, self.bundle.password)
        return (Step(export_planner(self.bundle, logins), settle=False),)
