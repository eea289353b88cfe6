"""The deployment host: one task per documented step, ``deploy-host`` for all of them, and the check."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace

from invoke import Context

from .cli import (
    MODE_HELP,
    PARALLEL_HELP,
    host_task,
    inventory_or_exit,
    parallel_or_default,
    selected_hosts,
    step_context,
)
from .docker import hostprep, registry, tls, trust
from .docker.verify import verify_script
from .engine.address import RegistryAddress
from .engine.context import Modes, StepContext
from .engine.converge import Planner, run_steps, verify
from .engine.fanout import HostTask, fan_out, finish
from .engine.hostrun import HostRun
from .engine.result import SKIPPED
from .remote import facts
from .replicas.store_env import ENV_FILE

DEPLOY_STEPS: tuple[Planner, ...] = (
    hostprep.update_packages,
    hostprep.upgrade_kernel,
    hostprep.install_docker,
    tls.secure_registry,
    registry.create_registry,
    trust.trust_registry,
    trust.copy_docker_unit,
    trust.add_docker_opts,
    trust.restart_docker,
)
STEP_HELP = {**MODE_HELP, "parallel": PARALLEL_HELP}
VERIFY_STEP = "verify-registry"


def deploy_sections(ctx: StepContext) -> tuple[facts.Section, ...]:
    """Every fact the deployment-host steps read."""
    settings = ctx.inventory.registry
    return (
        facts.OS,
        facts.KERNEL,
        facts.DOCKER,
        *facts.DOCKER_CONFIG,
        facts.PEP668,
        facts.PIP,
        facts.PACKAGES,
        facts.APT_AGE,
        facts.RUN_PROPAGATION,
        facts.container(settings.name),
        facts.image(settings.image),
        *tls.tls_sections(ctx),
        *tls.node_tls_sections(ctx),
        *((facts.files(ENV_FILE),) if settings.s3 else ()),
    )


def on_deploy_hosts(c: Context, work: Callable[[HostRun], None], modes: Modes, parallel: int) -> None:
    """``work`` on the ``-H`` hosts (default: the deployment host and the replicas, in parallel), then the recap."""
    inventory = inventory_or_exit()
    hosts = selected_hosts(c, inventory, inventory.registry_hosts)
    ctx = step_context(c, inventory, modes)
    task = HostTask(ctx, work, deploy_sections, RegistryAddress(inventory, c.config, serving=True), c.config)
    finish(fan_out(hosts, task, parallel_or_default(c, parallel)), modes.check)


def steps_then_verify(planners: tuple[Planner, ...], then_verify: bool) -> Callable[[HostRun], None]:
    def work(run: HostRun) -> None:
        if not (run_steps(run, planners) and then_verify):
            return
        if run.check:
            run.report(run.outcome(VERIFY_STEP, SKIPPED, "not run in check mode", time.monotonic()))
            return
        # The steps may have just made the CA and the login: the check uses this host's own.
        ca, password = run.facts.files.get(facts.CA_CERT), run.facts.files.get(facts.PASSWORD)
        run.ctx = replace(run.ctx, ca=ca or run.ctx.ca, password=(password or "").strip() or run.ctx.password)
        verify(run, VERIFY_STEP, verify_script(run.ctx, push=True))

    return work


def step_task(planner: Planner) -> object:
    """A task that runs one documented step alone."""

    def body(c, check=False, diff=False, repair=False, parallel=0):
        on_deploy_hosts(c, steps_then_verify((planner,), False), Modes(check, diff, repair), parallel)

    body.__name__ = planner.__name__
    body.__doc__ = planner.__doc__
    body.__module__ = __name__
    return host_task(help=STEP_HELP)(body)


@host_task(help=STEP_HELP)
def deploy_host(c, check=False, diff=False, repair=False, parallel=0):
    """Run every step on the deployment host, then verify the registry."""
    on_deploy_hosts(c, steps_then_verify(DEPLOY_STEPS, True), Modes(check, diff, repair), parallel)


@host_task(help={"parallel": PARALLEL_HELP})
def verify_registry(c, parallel=0):
    """Check the registry runs, answers /v2/, and a probe image round-trips (step 9)."""
    on_deploy_hosts(c, steps_then_verify((), True), Modes(), parallel)


STEP_TASKS = tuple(step_task(planner) for planner in DEPLOY_STEPS)
