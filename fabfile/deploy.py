"""The deployment host: one task per documented step, and ``deploy-host``."""

from __future__ import annotations

import time
from dataclasses import replace

from fabric import Connection
from invoke import Collection, Context, task
from invoke.exceptions import Exit

from . import steps
from .change import RESTART
from .inventory import Host, Inventory, InventoryError, load
from .report import CHANGED, FAILED, SKIPPED, Outcome, line, recap
from .runner import HostRun, StepFailed, say, unreachable_outcome
from .steps import StepContext

MODE_HELP = {
    "check": "change nothing; report what would change",
    "diff": "show each file's before and after",
    "repair": "move --insecure-registry flags into daemon.json instead of refusing",
}


def inventory_or_exit() -> Inventory:
    """The inventory, or exit status 2 with its one-line error."""
    try:
        return load()
    except InventoryError as error:
        raise Exit(f"error: {error}", code=2) from None


def hosts_for(c: Context, inventory: Inventory, default: tuple[Host, ...]) -> tuple[Host, ...]:
    """The ``-H`` host (looked up in the inventory) or ``default``."""
    if isinstance(c, Connection):
        return (inventory.resolve(c.original_host),)
    return default


def open_run(host: Host, inventory: Inventory, check: bool, diff: bool, repair: bool, c: Context):
    """Connect and gather facts; an ``unreachable`` Outcome when that fails."""
    started = time.monotonic()
    try:
        run = HostRun(host, StepContext(inventory, repair=repair), check, diff, c.config)
        run.gather()
    except StepFailed as error:
        return Outcome(host.name, "gather-facts", FAILED, str(error), time.monotonic() - started)
    except Exception as error:
        outcome = unreachable_outcome(host, "connect", error, started)
        if outcome is None:
            raise
        return outcome
    address = inventory.registry.address or next(iter(run.facts.addresses), "")
    run.ctx = replace(run.ctx, registry_address=address)
    return run


def deploy(run: HostRun, planners: tuple, verify: bool) -> list[Outcome]:
    """Run ``planners`` in order on one host, stopping at the first failure."""
    outcomes: list[Outcome] = []
    notified = None
    for planner in planners:
        outcome, plan = run.step(planner, replace(run.ctx, notified=notified))
        if outcome.status == CHANGED and plan.handler:
            notified = RESTART if RESTART in (notified, plan.handler) else plan.handler
        if run.check and outcome.status == FAILED and any(o.status == CHANGED for o in outcomes):
            # Check mode made none of the earlier changes this step depends on.
            outcome.status, outcome.message = SKIPPED, "depends on the changes above: " + outcome.message
        outcomes.append(outcome)
        say(line(outcome))
        if outcome.failed or outcome.status == SKIPPED:
            return outcomes
    if verify:
        outcomes.append(run.verify("verify-registry", steps.verify_script(run.ctx, push=True)))
        say(line(outcomes[-1]))
    return outcomes


def run_on_hosts(c: Context, planners: tuple, check: bool, diff: bool, repair: bool, verify: bool) -> None:
    """Run steps on the ``-H`` host or the deployment host, then the recap."""
    inventory = inventory_or_exit()
    outcomes: list[Outcome] = []
    for host in hosts_for(c, inventory, (inventory.deploy_host,)):
        run = open_run(host, inventory, check, diff, repair, c)
        if isinstance(run, Outcome):
            outcomes.append(run)
            say(line(run))
            continue
        try:
            outcomes += deploy(run, planners, verify)
        finally:
            run.close()
    say("\n" + recap(outcomes, check))
    if any(outcome.failed for outcome in outcomes):
        raise Exit(code=1)


def step_task(planner) -> object:
    """A task that runs one documented step alone."""

    def body(c, check=False, diff=False, repair=False):
        run_on_hosts(c, (planner,), check, diff, repair, verify=False)

    body.__name__ = planner.__name__
    body.__doc__ = planner.__doc__
    body.__module__ = __name__
    return task(help=MODE_HELP)(body)


@task(help=MODE_HELP)
def deploy_host(c, check=False, diff=False, repair=False):
    """Run every step on the deployment host, then verify the registry."""
    run_on_hosts(c, steps.DEPLOY_STEPS, check, diff, repair, verify=True)


@task(help={"check": MODE_HELP["check"]})
def verify_registry(c, check=False):
    """Check the registry runs, answers /v2/, and a probe image round-trips (step 9)."""
    run_on_hosts(c, (), check, False, False, verify=True)


STEP_TASKS = tuple(step_task(planner) for planner in steps.DEPLOY_STEPS)
ns = Collection(*STEP_TASKS, verify_registry, deploy_host)
