"""The release the cloud is pinned to: kolla-globals' pin in globals.d, read on the deployment host."""

from __future__ import annotations

from ..engine.action import Action
from ..facts.base import Section, files
from ..kolla.release_pin import pin_path, pinned_release
from ..model.context import StepContext
from ..model.facts import HostFacts


class ReadPin(Action):
    """Read the pin beside ``globals_path`` once, quietly: ``{"release": NAME}`` ("" when not pinned)."""

    name = step = "read-pin"
    needs_registry = False
    quiet = True

    def __init__(self, globals_path: str) -> None:
        self.path = pin_path(globals_path)

    def sections(self, ctx: StepContext) -> tuple[Section, ...]:
        return (files(self.path),)

    def data(self, facts: HostFacts, ctx: StepContext) -> dict:
        return {"release": pinned_release(facts.files.get(self.path))}
