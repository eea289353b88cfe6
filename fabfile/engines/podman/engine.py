"""Podman behind the engine interface: no daemon, nothing to reload, a drop-in of its own."""

from __future__ import annotations

from ...facts.base import Section
from ...model.context import StepContext
from ...model.facts import HostFacts
from ...model.plan import StepPlan
from ..base import PRESENT, PULLED, ContainerEngine, Insecure
from . import registries
from .facts import HELD_IMAGES, VERSION
from .paths import NAME, ca_path
from .resolve import resolve_section
from .verify import podman_check, podman_verify_script


class Podman(ContainerEngine):
    name = NAME
    # podman pulls quietly (its image ID): the ID before the pull tells, and inspect gives the digest.
    before_pull = "before=$(podman image inspect --format '{{.Id}}' \"$ref\" 2>/dev/null || true)"
    pull_command = 'podman pull -q "$ref"'
    pull_status = (
        f'[ -n "$before" ] && [ "$before" = "$(printf \'%s\' "$out" | tail -1)" ] && status={PRESENT} || status={PULLED}'
    )
    pull_digest = "podman image inspect --format '{{.Digest}}' \"$ref\" 2>/dev/null"

    def version_sections(self) -> tuple[Section, ...]:
        return (VERSION,)

    def target_sections(self, ctx: StepContext, verify: bool) -> tuple[Section, ...]:
        return (VERSION, registries.podman_files(ctx), podman_check(ctx, verify))

    def status_sections(self, ctx: StepContext) -> tuple[Section, ...]:
        return (VERSION, registries.podman_files(ctx))

    def resolve(self, ctx: StepContext, refs: list[str]) -> Section:
        return resolve_section(ctx, refs)

    def held_images(self) -> Section:
        return HELD_IMAGES

    def trust(self, facts: HostFacts, ctx: StepContext) -> StepPlan:
        return registries.trust_podman(facts, ctx)

    def insecure_entries(self, facts: HostFacts, registry: str) -> list[Insecure]:
        return registries.insecure_entries(facts, registry)

    def trusted(self, facts: HostFacts, registry: str) -> bool | None:
        return registries.trusted(facts, registry)

    def ca_path(self, registry: str) -> str:
        return ca_path(registry)

    def verify_script(self, ctx: StepContext) -> str:
        return podman_verify_script(ctx)


PODMAN = Podman()
