"""configure-targets: every target node's Docker and Podman trust the registry, and pull from it.

Each node gets one SSH connection. Its first exec session reads only the facts
the target steps need and, when the node already names the registry, verifies
it in the same session: a run that changes nothing costs one session per node,
one that changes something two (facts; then changes, Docker handler and pull).
"""

from __future__ import annotations

import time
from dataclasses import replace

from invoke.exceptions import Exit

from .cli import (
    MODE_HELP,
    PARALLEL_HELP,
    host_task,
    inventory_or_exit,
    parallel_or_default,
    selected_hosts,
    step_context,
)
from .docker import config as dc
from .docker.tls import diagnose, node_tls_sections
from .docker.trust import configure_target
from .docker.verify import engine_and_check, engine_missing, quick_verify_script
from .engine.address import RegistryAddress
from .engine.context import Modes, StepContext
from .engine.converge import converge
from .engine.fanout import HostTask, fan_out, finish
from .engine.hostrun import HostRun, RemoteError
from .engine.plan import StepPlan
from .engine.result import FAILED, OK, Outcome
from .podman import registries
from .podman.registries import podman_files, trust_podman
from .podman.verify import in_turn, node_verify_script, podman_check, podman_verify_script
from .remote import facts
from .remote.facts import HostFacts
from .remote.marks import failure_reason
from .replicas.hosts_file import ETC_HOSTS
from .replicas.placement import place_node, survey_and_place

STEP = "configure-targets"


def target_sections(ctx: StepContext) -> tuple[facts.Section, ...]:
    """The trust planners' facts, each engine's version and, outside check mode, the registry checks."""
    verify = not ctx.modes.check
    docker = (*facts.DOCKER_CONFIG, *node_tls_sections(ctx), engine_and_check(ctx, verify=verify))
    hosts = (facts.files(ETC_HOSTS),) if ctx.inventory.registry.hostname else ()
    return (*hosts, *docker, facts.PODMAN, podman_files(ctx), podman_check(ctx, verify))


def configure_engines(host: HostFacts, ctx: StepContext) -> StepPlan:
    """One plan for the node: its /etc/hosts line (registry.hostname), Docker's trust steps and handler,
    then podman's drop-in (no handler)."""
    plan = place_node(host, ctx)
    plan.step = STEP
    if host.docker_version and not plan.error:
        plan.merge(configure_target(host, ctx))
    if host.podman_version and not plan.error:
        plan.merge(trust_podman(host, ctx))
    return plan


def placed(placements: dict) -> object:
    """``configure_node`` with each node's placement (registry.hostname) in its context."""

    def work(run: HostRun) -> None:
        run.ctx = replace(run.ctx, placement=placements.get(run.host.name))
        configure_node(run)

    return work


def configure_node(run: HostRun) -> None:
    """Plan from the facts; changes, Docker handler and the pull checks in one more session."""
    started = time.monotonic()
    if engine_missing(run, STEP):
        return
    # A check made in the facts session is not run again when nothing changes.
    checked = run.facts.verified, run.facts.podman_verified
    # A node that moves to a TLS registry needs a second round: its old insecure entry
    # goes only once TLS verifies with the CA the first round wrote.
    secure = run.ctx.inventory.registry.secure
    settle = secure and (still_insecure(run) or registries.still_insecure(run.facts, run.ctx.registry))
    then = node_verify_script(run.ctx, run.facts)
    outcome, _ = converge(run, configure_engines, then=then, settle=settle, step=STEP)
    if outcome.status == OK:
        outcome = verified_node(run, checked, started)
    elif not run.check and not outcome.failed:
        outcome.message += f"; pulled probe{_with(run.facts)}"
    if run.ctx.placement and not outcome.failed and run.ctx.placement.name not in outcome.message:
        outcome.message += f"; instance {run.ctx.placement.name}"
    hint = diagnose(outcome.message, run.ctx.inventory.registry.secure) if outcome.failed else ""
    if hint and hint not in outcome.message:
        outcome.message += f" ({hint})"
    run.report(outcome)


def still_insecure(run: HostRun) -> bool:
    """Whether the node's daemon.json still lists the registry as insecure (from before TLS)."""
    if not run.facts.docker_version:
        return False
    try:
        listed, _ = dc.insecure_registries(run.facts)
    except dc.ConfigError:
        return False
    return run.ctx.registry in listed


def verified_node(run: HostRun, checked: tuple, started: float) -> Outcome:
    """Nothing to change: each engine's pull check from the facts session, or run it now."""
    if run.check:
        return run.outcome(STEP, OK, "nothing to change", started)
    docker, podman = checked
    engines = (
        (docker, quick_verify_script(run.ctx), run.facts.docker_version),
        (podman, podman_verify_script(run.ctx), run.facts.podman_version),
    )
    failed = next((result for result, _, installed in engines if installed and result and result[0]), None)
    if failed:
        return run.outcome(STEP, FAILED, f"exit {failed[0]}: {failure_reason(failed[1], '')}", started)
    unchecked = [script for result, script, installed in engines if installed and result is None]
    if unchecked:
        try:
            run.run(in_turn(unchecked))
        except RemoteError as error:
            return run.outcome(STEP, FAILED, str(error), started)
    return run.outcome(STEP, OK, f"{run.ctx.registry} trusted; pulled probe{_with(run.facts)}", started)


def _with(host: HostFacts) -> str:
    """Which engines pulled, where podman is one of them (a Docker node's row reads as it always did)."""
    if not host.podman_version:
        return ""
    return " with docker and podman" if host.docker_version else " with podman"


REBALANCE_HELP = "with registry.hostname: spread the nodes anew over the healthy instances (moves nodes back)"


@host_task(help={**MODE_HELP, "parallel": PARALLEL_HELP, "rebalance": REBALANCE_HELP})
def configure_targets(c, check=False, diff=False, repair=False, parallel=0, rebalance=False):
    """Make every target node's Docker (and Podman) trust the registry, and pull from it."""
    inventory = inventory_or_exit()
    nodes = selected_hosts(c, inventory, inventory.targets)
    if not nodes:
        raise Exit(f"error: {inventory.path}: targets: no target nodes listed", code=2)
    address = RegistryAddress(inventory, c.config)
    # The deployment host is asked while the targets connect, not before.
    address.start()
    modes = Modes(check, diff, repair)
    ctx = step_context(c, inventory, modes)
    parallel = parallel_or_default(c, parallel)
    work = configure_node
    if inventory.registry.hostname:
        work = placed(survey_and_place(nodes, address, ctx, c.config, parallel, rebalance))
    task = HostTask(ctx, work, target_sections, address, c.config, STEP)
    finish(fan_out(nodes, task, parallel), check, with_engine=True)
