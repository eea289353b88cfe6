"""The deployment host: one task per documented step, ``deploy-host`` for all of them, and the check."""

from __future__ import annotations

from invoke import Context

from ..actions.deploy import DEPLOY_STEPS, VERIFY_STEP, DeploySteps
from ..engine.action import Planner
from ..model.context import Modes
from .cli import JSON_HELP, MODE_HELP, PARALLEL_HELP, host_task, inventory_or_exit, run_and_finish

STEP_HELP = {**MODE_HELP, "parallel": PARALLEL_HELP, "json": JSON_HELP}


def step_task(planner: Planner) -> object:
    """A task that runs one documented step alone."""
    name = planner.__name__.replace("_", "-")

    def body(c, check=False, diff=False, repair=False, parallel=0, json=False):
        action = DeploySteps(name, (planner,), verify=False)
        run_and_finish(c, inventory_or_exit(), action, Modes(check, diff, repair), parallel, json)

    body.__name__ = planner.__name__
    body.__doc__ = planner.__doc__
    body.__module__ = __name__
    return host_task(help=STEP_HELP)(body)


@host_task(help=STEP_HELP)
def deploy_host(c, check=False, diff=False, repair=False, parallel=0, json=False):
    """Run every step on the deployment host, then verify the registry."""
    action = DeploySteps("deploy-host", DEPLOY_STEPS, verify=True)
    run_and_finish(c, inventory_or_exit(), action, Modes(check, diff, repair), parallel, json)


@host_task(help={"parallel": PARALLEL_HELP, "json": JSON_HELP})
def verify_registry(c: Context, parallel=0, json=False):
    """Check the registry runs, answers /v2/, and a probe image round-trips (step 9)."""
    run_and_finish(c, inventory_or_exit(), DeploySteps(VERIFY_STEP, (), verify=True), Modes(), parallel, json)


STEP_TASKS = tuple(step_task(planner) for planner in DEPLOY_STEPS)
