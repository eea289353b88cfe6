"""The deployment host's steps (each one documented step), deploy-host (all of them), and verify-registry."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from ..engine.action import Action, Check, Planner, Step
from ..engines.docker import facts as docker_facts
from ..engines.docker.install import install_docker, update_packages, upgrade_kernel
from ..engines.docker.paths import ca_path
from ..engines.docker.trust import add_docker_opts, copy_docker_unit, restart_docker, trust_registry
from ..engines.docker.verify import verify_script
from ..facts import system
from ..facts.base import Section, files
from ..model.context import Served, StepContext
from ..model.facts import HostFacts
from ..model.inventory import Host, Inventory
from ..registry import facts as registry_facts
from ..registry.container import create_registry
from ..registry.paths import CA_CERT, PASSWORD
from ..registry.reach import tls_check
from ..registry.replica_tls import is_replica, replica_sections
from ..registry.tls import secure_registry

DEPLOY_STEPS: tuple[Planner, ...] = (
    update_packages,
    upgrade_kernel,
    install_docker,
    secure_registry,
    create_registry,
    trust_registry,
    copy_docker_unit,
    add_docker_opts,
    restart_docker,
)
VERIFY_STEP = "verify-registry"


def deploy_sections(ctx: StepContext) -> tuple[Section, ...]:
    """Every fact the deployment-host steps read."""
    return (
        system.OS,
        system.KERNEL,
        docker_facts.VERSION,
        *docker_facts.CONFIG,
        system.PEP668,
        system.PIP,
        system.PACKAGES,
        system.APT_AGE,
        system.RUN_PROPAGATION,
        *registry_facts.container_sections(ctx),
        *replica_sections(ctx),
        *_docker_ca(ctx),
    )


def _docker_ca(ctx: StepContext) -> tuple[Section, ...]:
    """A secure registry: the copy of its CA Docker on this host uses (trust-registry puts it there),
    whether TLS verifies with it from here (then an old insecure entry may go), and what dockerd
    itself treats as insecure."""
    if not ctx.inventory.registry.secure or not ctx.registry_address:
        return ()
    return (files(ca_path(ctx.registry)), tls_check(ctx, [ca_path(ctx.registry)]), docker_facts.REGISTRY_CONFIG)


class DeploySteps(Action):
    """Documented steps on the registry hosts (the deployment host and the replicas), in order,
    stopping at the first failure; then, for deploy-host and verify-registry, the registry's check.

    ``served``: for replicas, what each serves with, as the deployment host issued it (the task runs
    the deployment host first, then the replicas with this)."""

    serving = True

    def __init__(
        self, name: str, planners: tuple[Planner, ...], verify: bool, served: Mapping[str, Served] | None = None
    ) -> None:
        self.name = name
        self.planners = planners
        self.verify = verify
        self.served = dict(served or {})

    def hosts(self, inventory: Inventory) -> tuple[Host, ...]:
        return inventory.registry_hosts

    def context(self, ctx: StepContext, host: Host) -> StepContext:
        if not ctx.inventory.is_replica(host):
            return ctx
        return replace(ctx, served=self.served.get(host.name, Served()))

    def sections(self, ctx: StepContext) -> tuple[Section, ...]:
        return deploy_sections(ctx)

    def steps(self, ctx: StepContext) -> tuple[Step, ...]:
        return tuple(Step(planner) for planner in self.planners)

    def check(self, facts: HostFacts, ctx: StepContext) -> Check | None:
        if not self.verify:
            return None
        # The steps may have just made the CA and the login: the check uses this host's own.
        ca, password = facts.files.get(CA_CERT), (facts.files.get(PASSWORD) or "").strip()
        ctx = replace(ctx, ca=ca or ctx.ca, password=password or ctx.password)
        # Writes go through the deployment host's writer alone: a replica pulls the probe it pushed.
        return Check(VERIFY_STEP, script=verify_script(ctx, push=not is_replica(ctx), container=True))
