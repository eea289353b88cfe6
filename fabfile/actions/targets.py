"""configure-targets: every target node's engines trust the registry, and pull from it.

Each node gets one SSH connection. Its first exec session reads only the facts
the trust planners need and, when the node already names the registry, runs the
pull check in the same session: a run that changes nothing costs one session
per node, one that changes something two (facts; then changes, handler and check).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from ..engine.action import Action, Check, Step
from ..engines import ENGINES, installed, missing_reason
from ..engines.shell import HOSTS_SETTLE, in_turn
from ..facts.base import Section, files
from ..model.context import Placement, StepContext
from ..model.facts import HostFacts
from ..model.inventory import Host, Inventory
from ..model.marks import MARK, failure_reason
from ..model.outcome import Outcome
from ..model.plan import StepPlan
from ..registry.access import Instance
from ..registry.diagnose import diagnose
from ..registry.reach import health_section, tls_check, tls_verified
from ..registry.replicas.hosts_file import ETC_HOSTS
from ..registry.replicas.placement import place_node

STEP = "configure-targets"


def configure_engines(facts: HostFacts, ctx: StepContext) -> StepPlan:
    """One plan for the node: its /etc/hosts line (registry.hostname), then each engine's trust."""
    plan = place_node(facts, ctx)
    plan.step = STEP
    engines = installed(facts)
    if not engines:
        plan.error = missing_reason(ctx.host_name)
    for engine in engines:
        if not plan.error:
            plan.merge(engine.trust(facts, ctx))
    return plan


def moving_to_tls(facts: HostFacts, ctx: StepContext) -> bool:
    """A node that moves to a TLS registry needs a second round: its old insecure entry goes only
    once TLS verifies with the CA the first round wrote."""
    return ctx.inventory.registry.secure and any(engine.still_insecure(facts, ctx) for engine in installed(facts))


def insecure_yet(facts: HostFacts, ctx: StepContext) -> list[str]:
    """A TLS registry an engine here still treats as insecure, where TLS does not verify from here yet:
    each entry that does it (the changes being applied keep it). Empty otherwise."""
    if not ctx.inventory.registry.secure or tls_verified(facts):
        return []
    return [str(entry) for engine in installed(facts) for entry in engine.insecure_entries(facts, ctx.registry)]


def pull_checks(facts: HostFacts, ctx: StepContext) -> str:
    """Shell: each engine's pull check in turn; the first that fails ends it.

    None while an engine still treats a TLS registry as insecure: its login would go over a
    connection whose certificate nobody checks. The next round removes the entry once TLS
    verifies with the CA (no credentials), and checks then.
    """
    if insecure_yet(facts, ctx):
        return ""
    scripts = [engine.verify_script(ctx) for engine in installed(facts)]
    if scripts and ctx.inventory.registry.hostname and installed(facts)[0] is ENGINES[0]:
        # dockerd caches /etc/hosts for up to 5 s: wait out a move of the registry's name.
        scripts[0] = HOSTS_SETTLE + scripts[0]
    return in_turn(scripts)


def proof(facts: HostFacts, ctx: StepContext, changed: bool) -> Check:
    """The node pulls: done with the changes when it changed, else known from the facts session, or run now."""
    pulled = f"pulled probe{engines_that_pulled(facts)}"
    still = insecure_yet(facts, ctx)
    if still:
        # Never checked: the login would have gone over an unchecked connection.
        why = facts.reach.tls or "no answer"
        return Check(
            STEP,
            failed=f"TLS does not verify from here with the registry's CA ({why}): "
            f"{ctx.registry} stays insecure ({'; '.join(still)}), so no login was sent",
        )
    if changed:
        return Check(STEP, passed=pulled)
    engines = installed(facts)
    results = [(engine, facts.engine(engine.name).checked) for engine in engines]
    failed = next((result for _, result in results if result and result[0]), None)
    if failed:
        return Check(STEP, failed=f"exit {failed[0]}: {failure_reason(failed[1], '')}")
    unchecked = [engine.verify_script(ctx) for engine, result in results if result is None]
    # Checked in the facts session: the probe resolved through each engine, nothing downloaded, unless
    # the resolve did not answer plainly and the full check (login, pull) ran in its place.
    resolved = all(f"{MARK} resolved " in result[1] for _, result in results if result)
    proved = pulled if unchecked or not resolved else f"resolved probe{engines_that_pulled(facts)}"
    return Check(STEP, script=in_turn(unchecked), passed=f"{ctx.registry} trusted; {proved}")


def engines_that_pulled(facts: HostFacts) -> str:
    """Which engines pulled (or resolved), where Docker is not the only one (a Docker node's row reads as
    it always did)."""
    names = [engine.name for engine in installed(facts)]
    return "" if names in ([], [ENGINES[0].name]) else f" with {' and '.join(names)}"


class ConfigureTargets(Action):
    """Trust the registry on every target node, reload or restart only where something changed, and pull."""

    name = step = STEP
    with_engine = True

    def __init__(self, placements: Mapping[str, Placement] | None = None) -> None:
        self.placements = dict(placements or {})

    def hosts(self, inventory: Inventory) -> tuple[Host, ...]:
        return inventory.targets

    def context(self, ctx: StepContext, host: Host) -> StepContext:
        placement = self.placements.get(host.name)
        return ctx if placement is None else replace(ctx, placement=placement)

    def sections(self, ctx: StepContext) -> tuple[Section, ...]:
        verify = not ctx.modes.check
        hosts = (files(ETC_HOSTS),) if ctx.inventory.registry.hostname else ()
        engines = tuple(section for engine in ENGINES for section in engine.target_sections(ctx, verify))
        return (*hosts, *engines, *node_tls(ctx))

    def steps(self, ctx: StepContext) -> tuple[Step, ...]:
        return (Step(configure_engines, STEP, settle=moving_to_tls, then=pull_checks, check=proof),)

    def explain(self, outcome: Outcome, ctx: StepContext) -> str:
        if outcome.failed:
            hint = diagnose(outcome.message, ctx.inventory.registry.secure)
            return f" ({hint})" if hint and hint not in outcome.message else ""
        placement = ctx.placement
        if placement is None:
            return ""
        said = "" if placement.name in outcome.message else f"; instance {placement.name}"
        if placement.fallback and f"zone {placement.fallback} " not in outcome.message:
            said += f" (fallback: zone {placement.fallback} has no healthy instance)"
        return said


def node_tls(ctx: StepContext) -> tuple[Section, ...]:
    """A secure registry: whether TLS verifies from the node with the CA one of its engines has."""
    if not ctx.inventory.registry.secure or not ctx.registry_address:
        return ()
    return (tls_check(ctx, [engine.ca_path(ctx.registry) for engine in ENGINES]),)


class SurveyNodes(Action):
    """Read each node's /etc/hosts and its view of every instance (registry.hostname), quietly."""

    name = step = "survey"
    quiet = True
    needs_registry = False

    def __init__(self, instances: tuple[Instance, ...]) -> None:
        self.instances = instances

    def hosts(self, inventory: Inventory) -> tuple[Host, ...]:
        return inventory.targets

    def sections(self, ctx: StepContext) -> tuple[Section, ...]:
        return (files(ETC_HOSTS), health_section(self.instances, ctx.scheme, ctx.inventory.registry.port))

    def data(self, facts: HostFacts, ctx: StepContext) -> dict:
        return {"etc_hosts": facts.files.get(ETC_HOSTS), "instances": dict(facts.reach.instances)}
