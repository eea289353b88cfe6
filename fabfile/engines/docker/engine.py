"""Docker behind the engine interface."""

from __future__ import annotations

from ...facts.base import Section, files
from ...model.context import StepContext
from ...model.facts import HostFacts
from ...model.plan import StepPlan
from ..base import PRESENT, PULLED, ContainerEngine, Insecure
from . import config as dc
from .facts import CONFIG, HELD_IMAGES, REGISTRY_CONFIG, VERSION
from .insecure import insecure_entries
from .paths import NAME, ca_path
from .resolve import resolve_section
from .trust import configure_target
from .verify import engine_and_check, quick_verify_script


class Docker(ContainerEngine):
    name = NAME
    pull_command = 'docker pull "$ref"'
    # Docker tells whether it was up to date, and the digest.
    pull_status = f'case "$out" in *"Image is up to date"*) status={PRESENT} ;; *) status={PULLED} ;; esac'
    pull_digest = "printf '%s' \"$out\" | sed -n 's/^Digest: //p'"

    def version_sections(self) -> tuple[Section, ...]:
        return (VERSION,)

    def target_sections(self, ctx: StepContext, verify: bool) -> tuple[Section, ...]:
        return (*CONFIG, *self._tls(ctx), engine_and_check(ctx, verify=verify))

    def status_sections(self, ctx: StepContext) -> tuple[Section, ...]:
        tls = self._tls(ctx)
        # A secure registry: dockerd's own view of which registries it treats as insecure.
        return (VERSION, *CONFIG, *tls, *((REGISTRY_CONFIG,) if tls else ()))

    def _tls(self, ctx: StepContext) -> tuple[Section, ...]:
        """A secure registry: the CA Docker has for it."""
        if not ctx.inventory.registry.secure or not ctx.registry_address:
            return ()
        return (files(ca_path(ctx.registry)),)

    def resolve(self, ctx: StepContext, refs: list[str]) -> Section:
        return resolve_section(ctx, refs)

    def held_images(self) -> Section:
        return HELD_IMAGES

    def trust(self, facts: HostFacts, ctx: StepContext) -> StepPlan:
        return configure_target(facts, ctx)

    def insecure_entries(self, facts: HostFacts, registry: str) -> list[Insecure]:
        try:
            return insecure_entries(facts, registry)
        except dc.ConfigError:
            return []

    def trusted(self, facts: HostFacts, registry: str) -> bool | None:
        try:
            from_json, from_flags = dc.insecure_registries(facts)
        except dc.ConfigError:
            return None
        return dc.trusts([*from_json, *from_flags], registry)

    def ca_path(self, registry: str) -> str:
        return ca_path(registry)

    def verify_script(self, ctx: StepContext) -> str:
        return quick_verify_script(ctx)


DOCKER = Docker()
