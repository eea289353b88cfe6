"""kolla-globals: kolla-ansible's globals.yml (and passwords.yml, the CA) on the deployment host, pointed at
the registry; with a release, the pin that puts every image at its snapshot tag."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import PurePosixPath

from ..engine.action import Action, Step
from ..facts.base import Section, files
from ..images.model import Image
from ..kolla.globals_yaml import STEP, globals_planner, kolla_files
from ..kolla.pin_plan import pin_planner, snapshots_query
from ..kolla.release_pin import UNPIN, pin_path
from ..model.context import StepContext


class KollaGlobals(Action):
    """Set the registry keys in globals.yml at ``path``, every other line kept; with ``release``, pin
    every image of ``images`` to its snapshot tag in that release (``none``: unpin)."""

    name = step = STEP

    def __init__(self, path: str, namespace: str, release: str = "", images: Sequence[Image] = ()) -> None:
        self.path = path
        self.planner = globals_planner(path, namespace)
        self.release = release
        self.images = list(images)

    def sections(self, ctx: StepContext) -> tuple[Section, ...]:
        if not self.release:
            return (files(*kolla_files(self.path)),)
        folder = PurePosixPath(self.path).parent / "globals.d"
        globs = tuple(f"{folder}/*{suffix}" for suffix in (".yml", ".yaml", ".json"))
        read = files(*kolla_files(self.path), pin_path(self.path), globs=globs)
        asked = (snapshots_query(self.images, self.release, ctx),) if self.images and self.release != UNPIN else ()
        return (read, *asked)

    def steps(self, ctx: StepContext) -> tuple[Step, ...]:
        pin = (Step(pin_planner(self.path, self.release, self.images)),) if self.release else ()
        return (Step(self.planner), *pin)
