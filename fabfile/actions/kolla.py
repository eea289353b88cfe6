"""kolla-globals: kolla-ansible's globals.yml (and passwords.yml, the CA) on the deployment host, pointed at the registry."""

from __future__ import annotations

from ..engine.action import Action, Step
from ..facts.base import Section, files
from ..kolla.globals_yaml import STEP, globals_planner, kolla_files
from ..model.context import StepContext


class KollaGlobals(Action):
    """Set the registry keys in globals.yml at ``path``, every other line kept."""

    name = step = STEP

    def __init__(self, path: str, namespace: str) -> None:
        self.path = path
        self.planner = globals_planner(path, namespace)

    def sections(self, ctx: StepContext) -> tuple[Section, ...]:
        return (files(*kolla_files(self.path)),)

    def steps(self, ctx: StepContext) -> tuple[Step, ...]:
        return (Step(self.planner),)
