"""configure-targets: every target node's Docker trusts the registry, and pulls from it.

Each node gets one SSH connection. Its first exec session reads only the facts
the target steps need and, when the node already names the registry, verifies
it in the same session: a run that changes nothing costs one session per node,
one that changes something two (facts; then changes, Docker handler and pull).
"""

from __future__ import annotations

import time

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
from .engine.result import FAILED, OK
from .remote import facts
from .remote.marks import failure_reason

STEP = "configure-targets"


def target_sections(ctx: StepContext) -> tuple[facts.Section, ...]:
    """The trust planners' facts, the engine's version and, outside check mode, the registry check."""
    return (*facts.DOCKER_CONFIG, *node_tls_sections(ctx), engine_and_check(ctx, verify=not ctx.modes.check))


def configure_node(run: HostRun) -> None:
    """Plan from the facts; changes, Docker handler and the pull check in one more session."""
    started = time.monotonic()
    if engine_missing(run, STEP):
        return
    # A check made in the facts session is not run again when nothing changes.
    checked = run.facts.verified
    # A node that moves to a TLS registry needs a second round: its old insecure entry
    # goes only once TLS verifies with the CA the first round wrote.
    settle = run.ctx.inventory.registry.secure and still_insecure(run)
    then = quick_verify_script(run.ctx)
    outcome, _ = converge(run, configure_target, then=then, settle=settle, step=STEP)
    if outcome.status == OK:
        outcome = verified_node(run, checked, started)
    elif not run.check and not outcome.failed:
        outcome.message += "; pulled probe"
    hint = diagnose(outcome.message, run.ctx.inventory.registry.secure) if outcome.failed else ""
    if hint and hint not in outcome.message:
        outcome.message += f" ({hint})"
    run.report(outcome)


def still_insecure(run: HostRun) -> bool:
    """Whether the node's daemon.json still lists the registry as insecure (from before TLS)."""
    try:
        listed, _ = dc.insecure_registries(run.facts)
    except dc.ConfigError:
        return False
    return run.ctx.registry in listed


def verified_node(run: HostRun, checked: tuple[int, str] | None, started: float):
    """Nothing to change: the pull check from the facts session, or run it now."""
    if run.check:
        return run.outcome(STEP, OK, "nothing to change", started)
    if checked is None:
        try:
            run.run(quick_verify_script(run.ctx))
        except RemoteError as error:
            return run.outcome(STEP, FAILED, str(error), started)
    elif checked[0]:
        return run.outcome(STEP, FAILED, f"exit {checked[0]}: {failure_reason(checked[1], '')}", started)
    return run.outcome(STEP, OK, f"{run.ctx.registry} trusted; pulled probe", started)


@host_task(help={**MODE_HELP, "parallel": PARALLEL_HELP})
def configure_targets(c, check=False, diff=False, repair=False, parallel=0):
    """Make every target node's Docker trust the registry, and pull from it."""
    inventory = inventory_or_exit()
    nodes = selected_hosts(c, inventory, inventory.targets)
    if not nodes:
        raise Exit(f"error: {inventory.path}: targets: no target nodes listed", code=2)
    address = RegistryAddress(inventory, c.config)
    # The deployment host is asked while the targets connect, not before.
    address.start()
    modes = Modes(check, diff, repair)
    task = HostTask(
        step_context(c, inventory, modes), configure_node, target_sections, address, c.config, STEP
    )
    finish(fan_out(nodes, task, parallel_or_default(c, parallel)), check, with_docker=True)
