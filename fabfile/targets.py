"""Target nodes: make every node's Docker trust the registry, in parallel."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

from invoke import Context, task
from invoke.exceptions import Exit

from . import steps
from .change import RESTART, StepPlan, apply_script, handler_script
from .deploy import MODE_HELP, hosts_for, inventory_or_exit, open_run
from .facts import PENDING
from .inventory import Host, Inventory
from .report import CHANGED, FAILED, OK, Outcome, line, recap
from .runner import MAX_ROUNDS, HostRun, StepFailed, say

STEP = "configure-targets"


def node_plan(run: HostRun) -> StepPlan:
    """Every target step's changes on one node, merged into one plan."""
    plan = StepPlan(STEP)
    for planner in steps.TARGET_STEPS:
        part = planner(run.facts, run.ctx)
        if part.error:
            plan.error = part.error
            return plan
        plan.files += part.files
        if part.handler:
            plan.handler = RESTART if RESTART in (plan.handler, part.handler) else part.handler
    return plan


def configure_node(run: HostRun) -> Outcome:
    """Facts in one round trip; changes, Docker handler and the pull check in another."""
    started = time.monotonic()
    for _ in range(MAX_ROUNDS):
        try:
            return converge_node(run, started)
        except StepFailed as error:
            if not error.conflict:
                raise
            # Another run changed a file since our facts: plan again from fresh ones.
            run.gather()
    return run.outcome(STEP, FAILED, "files kept changing under another run; try again", started)


def converge_node(run: HostRun, started: float) -> Outcome:
    if not run.facts.docker_version:
        return run.outcome(
            STEP, FAILED, f"Docker is not installed: run fab -H {run.host.name} install-docker", started
        )
    plan = node_plan(run)
    if plan.error:
        return run.outcome(STEP, FAILED, plan.error, started)
    pending = bool(run.facts.files.get(PENDING, "").strip())
    run.show_diff(plan)
    if run.check:
        status = CHANGED if plan.changed or pending else OK
        return run.outcome(STEP, status, plan.summary() or "nothing to change", started)
    script = steps.verify_script(run.ctx, push=False)
    if plan.changed or pending:
        script = apply_script(plan, run.stamp) + handler_script(run.ctx.registry) + script
    try:
        run.run(script)
    except StepFailed as error:
        if error.conflict:
            raise
        return run.outcome(STEP, FAILED, f"{plan.summary() or 'pending Docker changes'}: {error}", started)
    if plan.changed or pending:
        handler = plan.handler or "reload"
        return run.outcome(
            STEP, CHANGED, f"{plan.summary() or 'pending'}; Docker {handler}; pulled probe", started
        )
    return run.outcome(STEP, OK, f"{run.ctx.registry} trusted; pulled probe", started)


def node_outcome(host: Host, inventory: Inventory, address: str, modes: dict, c: Context) -> Outcome:
    """Configure one node; whatever happens there stays there."""
    started = time.monotonic()
    run = open_run(host, inventory, modes["check"], modes["diff"], modes["repair"], c)
    if isinstance(run, Outcome):
        outcome = run
    else:
        try:
            run.ctx = replace(run.ctx, registry_address=address)
            outcome = configure_node(run)
        except Exception as error:  # noqa: BLE001 - one node's surprise must not stop the others
            outcome = run.outcome(STEP, FAILED, f"{type(error).__name__}: {error}", started)
        finally:
            run.close()
    outcome.step = STEP
    outcome.seconds = time.monotonic() - started
    say(line(outcome))
    return outcome


def registry_address(inventory: Inventory, c: Context) -> str:
    """The inventory's registry address, or the deployment host's first IP."""
    if inventory.registry.address:
        return inventory.registry.address
    run = open_run(inventory.deploy_host, inventory, True, False, False, c)
    if isinstance(run, Outcome):
        raise Exit(
            f"error: cannot learn the registry address from {inventory.deploy_host.name}: "
            f"{run.message}; set registry.address in {inventory.path}",
            code=1,
        )
    run.close()
    return run.ctx.registry_address


@task(
    help={
        **MODE_HELP,
        "parallel": "how many nodes to work on at once (default: kolla_registry.parallel, 10)",
    }
)
def configure_targets(c, check=False, diff=False, repair=False, parallel=0):
    """Make every target node's Docker trust the registry, and pull from it."""
    inventory = inventory_or_exit()
    nodes = hosts_for(c, inventory, inventory.targets)
    if not nodes:
        raise Exit(f"error: {inventory.path}: targets: no target nodes listed", code=2)
    address = registry_address(inventory, c)
    workers = parallel or c.config.get("kolla_registry", {}).get("parallel", 10)
    modes = {"check": check, "diff": diff, "repair": repair}
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        outcomes = list(pool.map(lambda host: node_outcome(host, inventory, address, modes, c), nodes))
    say("\n" + recap(outcomes, check, with_docker=True))
    if any(outcome.failed for outcome in outcomes):
        raise Exit(code=1)
