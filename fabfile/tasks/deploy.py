"""The deployment host: one task per documented step, ``deploy-host`` for all of them, and the check.

With replicas, the deployment host goes first: its CA issues the replicas' certificates and its
writer pushes the probe they pull. The replicas then run at once, each with what the deployment
host holds for it (its certificate and key, the one login file); one recap for all.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from invoke import Context

from ..actions.deploy import DEPLOY_STEPS, VERIFY_STEP, DeploySteps
from ..engine.access import RegistryAccess
from ..engine.action import Planner
from ..engine.report import Result, finish
from ..model.context import Modes, Served
from .cli import JSON_HELP, MODE_HELP, PARALLEL_HELP, host_task, inventory_or_exit, run_action, selected_hosts

STEP_HELP = {**MODE_HELP, "parallel": PARALLEL_HELP, "json": JSON_HELP}
Make = Callable[[Mapping[str, Served]], DeploySteps]


def run_registry_hosts(c: Context, make: Make, modes: Modes, parallel: int, json: bool) -> None:
    """``make(served)`` on the registry hosts (or the -H ones): the deployment host first, then the others
    at once with what it holds for them; one recap, one exit status."""
    inventory = inventory_or_exit()
    hosts = selected_hosts(c, inventory, inventory.registry_hosts)
    first = tuple(host for host in hosts if inventory.is_deploy_host(host))
    rest = tuple(host for host in hosts if not inventory.is_deploy_host(host))
    results: list[Result] = []
    if first:
        results.append(run_action(c, inventory, make({}), modes, parallel, hosts=first, json=json))
    if rest:
        # Asked now, after the deployment host's run made them: a fresh access learns its CA and login too.
        access = RegistryAccess(inventory, c.config, serving=True)
        served = access.served() if any(inventory.is_replica(host) for host in rest) else {}
        results.append(run_action(c, inventory, make(served), modes, parallel, access, hosts=rest, json=json))
    done = Result(results[0].task, [row for result in results for row in result.outcomes], modes.check)
    finish(done, json)


def step_task(planner: Planner) -> object:
    """A task that runs one documented step alone."""
    name = planner.__name__.replace("_", "-")

    def body(c, check=False, diff=False, repair=False, parallel=0, json=False):
        make = lambda served: DeploySteps(name, (planner,), verify=False, served=served)
        run_registry_hosts(c, make, Modes(check, diff, repair), parallel, json)

    body.__name__ = planner.__name__
    body.__doc__ = planner.__doc__
    body.__module__ = __name__
    return host_task(help=STEP_HELP)(body)


@host_task(help=STEP_HELP)
def deploy_host(c, check=False, diff=False, repair=False, parallel=0, json=False):
    """Run every step on the deployment host (then on the replicas), then verify the registry."""
    make = lambda served: DeploySteps("deploy-host", DEPLOY_STEPS, verify=True, served=served)
    run_registry_hosts(c, make, Modes(check, diff, repair), parallel, json)


@host_task(help={"parallel": PARALLEL_HELP, "json": JSON_HELP})
def verify_registry(c: Context, parallel=0, json=False):
    """Check the registry runs, answers /v2/, and a probe image round-trips (step 9)."""
    make = lambda served: DeploySteps(VERIFY_STEP, (), verify=True, served=served)
    run_registry_hosts(c, make, Modes(), parallel, json)


STEP_TASKS = tuple(step_task(planner) for planner in DEPLOY_STEPS)
