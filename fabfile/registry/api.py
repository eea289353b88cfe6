"""Registry API questions asked from a host, as facts sections: the answers land in ``facts.reach.answers``.

The upstream and the local registry must answer the host that will copy or
pull (the deployment host, a node), not this machine: the question runs there
(``payload``), with the local registry's CA and login when it has them.
"""

from __future__ import annotations

from collections.abc import Sequence

from .. import payload
from ..engines.docker import paths as docker_paths
from ..engines.podman import paths as podman_paths
from ..facts.base import Section, Texts
from ..model.context import StepContext
from ..model.facts import HostFacts
from .paths import CA_CERT, REGISTRY_USER


def local_base(ctx: StepContext) -> str:
    """The local registry's URL."""
    return f"{ctx.scheme}://{ctx.registry}"


def with_access(ctx: StepContext, request: dict, logins: Sequence[list] = ()) -> dict:
    """``request`` with what asking the local registry takes (its CA, its login) and ``logins``
    ([[BASE, USER, PASSWORD], ...], a private upstream's)."""
    found = list(logins)
    if ctx.inventory.registry.secure:
        # Whichever the host has: Docker's or podman's copy on a node, the CA itself on a registry host.
        cas = [docker_paths.ca_path(ctx.registry), podman_paths.ca_path(ctx.registry), CA_CERT]
        request = {**request, "cafile": cas}
    if ctx.login:
        found.append([local_base(ctx), REGISTRY_USER, ctx.password])
    return {**request, "logins": found} if found else request


def query(name: str, ctx: StepContext, request: dict, logins: Sequence[list] = ()) -> Section:
    """A section that asks the registry API from the host; its answer is ``answer(facts, name)``."""
    mark = f"query-{name}"

    def parse(texts: Texts, facts: HostFacts) -> None:
        found = payload.last_json(texts.get(mark, ""))
        facts.reach.answers[name] = found if found is not None else {"error": _no_answer(texts.get(mark, ""))}

    shell = f"s {mark}\n( {payload.script(with_access(ctx, request, logins))} ) 2>&1"
    return Section(mark, shell, parse)


def answer(facts: HostFacts, name: str) -> dict:
    """What the host answered to query ``name`` ({} when it was not asked)."""
    return facts.reach.answers.get(name) or {}


def _no_answer(output: str) -> str:
    last = output.strip().splitlines()[-1:] or ["no output"]
    return f"registry query: no answer ({last[0][-200:]})"
