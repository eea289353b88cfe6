"""The tags a tag filter chooses among: each filtered repository's tag list, from the upstream or the registry."""

from __future__ import annotations

from collections.abc import Sequence

from ..engine.action import Action
from ..facts.base import Section
from ..images.model import upstream_base, upstream_limits, upstream_logins
from ..model.context import StepContext
from ..model.facts import HostFacts
from ..model.inventory import HERE, Host, ImageSettings, Inventory
from ..registry.api import answer, local_base, query

UPSTREAM, REGISTRY = "upstream", "registry"


class ListTags(Action):
    """Ask ``where`` (the upstream, or the local registry) for the tags of ``repositories``, quietly: from the
    deployment host, or from this machine with ``here`` (an export)."""

    name = step = "list-tags"
    quiet = True
    serving = True

    def __init__(self, settings: ImageSettings, repositories: Sequence[str], where: str, here: bool = False) -> None:
        self.settings = settings
        self.repositories = list(repositories)
        self.where = where
        self.local = here
        self.needs_registry = where == REGISTRY

    def hosts(self, inventory: Inventory) -> tuple[Host, ...]:
        return (HERE,) if self.local else (inventory.deploy_host,)

    def sections(self, ctx: StepContext) -> tuple[Section, ...]:
        upstream = self.where == UPSTREAM
        base = upstream_base(self.settings) if upstream else local_base(ctx)
        request = {"tags": [[base, repository] for repository in self.repositories], **upstream_limits(self.settings)}
        return (query("tags", ctx, request, upstream_logins(self.settings) if upstream else ()),)

    def data(self, facts: HostFacts, ctx: StepContext) -> dict:
        found = answer(facts, "tags")
        listed = found.get("tags") or []
        if len(listed) != len(self.repositories):
            return {"error": found.get("error") or "no answer"}
        errors = {item.get("repo"): item.get("error") for item in listed if item.get("error")}
        return {"tags": {item.get("repo"): list(item.get("tags") or []) for item in listed}, "errors": errors}
