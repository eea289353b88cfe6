"""pull-images: every target pre-pulls the synced images from the local registry, like ``kolla-ansible pull``."""

from __future__ import annotations

import time

from invoke import Context
from invoke.exceptions import Exit

from .cli import (
    PARALLEL_HELP,
    host_task,
    image_settings_or_exit,
    inventory_or_exit,
    parallel_or_default,
    selected_hosts,
    step_context,
)
from .docker.verify import engine_missing, login_lines
from .engine.address import RegistryAddress
from .engine.context import Modes
from .engine.fanout import HostTask, fan_out, finish
from .engine.hostrun import HostRun
from .engine.result import FAILED, print_line
from .images.model import Image, image_list
from .images.pull import STEP, check_script, parse_pulls, pull_outcome, pull_script
from .remote import facts
from .remote.facts import REGISTRY_USER, HostFacts

ENGINES = ("docker", "podman")


def pull_on(images: list[Image], per_node: int, retries: int, engine: str = ""):
    """The work on one node: pull (or, in check mode, look for) every image, in one round trip."""

    def work(run: HostRun) -> None:
        started = time.monotonic()
        if engine_missing(run, STEP):
            return
        cli = pulling_engine(run.facts, engine)
        if not cli:
            run.report(run.outcome(STEP, FAILED, f"--engine {engine}: not installed on this node", started))
            return
        wanted = {image.at(run.ctx.registry): image for image in images}
        refs = list(wanted)
        script = check_script(refs, cli) if run.check else pull_script(refs, per_node, retries, cli=cli)
        if run.ctx.login and not run.check:
            # As kolla-ansible logs in: Docker keeps it in root's ~/.docker/config.json, podman
            # in root's /run/containers/0/auth.json (both 0600).
            login = login_lines(run.ctx.registry, REGISTRY_USER, run.ctx.password, cli)
            script = "\n".join([*login, script])
        pulls = parse_pulls(run.run(script), wanted)
        outcome = pull_outcome(run.host.name, pulls, run.check, run.ctx.inventory.registry.secure)
        outcome.seconds, outcome.engine = time.monotonic() - started, run.facts.engine
        run.report(outcome)

    return work


def pulling_engine(host: HostFacts, engine: str = "") -> str:
    """The engine that pulls on this node: the one asked for, else its only one, else Docker
    (kolla-ansible's default engine); "" when the one asked for is not there."""
    if engine:
        return engine if engine in host.engines else ""
    return host.engines[0] if host.engines else ""


@host_task(
    help={
        "images": "YAML file with the image list, shaped like the inventory's images: section "
        "(default: that section)",
        "parallel": PARALLEL_HELP,
        "per_node": "how many images each node pulls at once (default 3)",
        "retries": "attempts after the first when a pull fails for a transient reason, 5 s apart (default 3)",
        "check": "pull nothing; say which images each node lacks",
        "engine": "docker or podman: the engine that pulls on nodes that have both "
        "(default: docker there, kolla-ansible's default kolla_container_engine; elsewhere the node's only one)",
    }
)
def pull_images(c: Context, images="", parallel=0, per_node=3, retries=3, check=False, engine=""):
    """Pre-pull the synced images on every target from the local registry, like kolla-ansible pull."""
    if engine not in ("", *ENGINES):
        raise Exit(f"error: --engine: {engine!r} is not one of {', '.join(ENGINES)}", code=2)
    inventory = inventory_or_exit()
    wanted = image_list(image_settings_or_exit(inventory, images))
    nodes = selected_hosts(c, inventory, inventory.targets)
    if not nodes:
        raise Exit(f"error: {inventory.path}: targets: no target nodes listed", code=2)
    address = RegistryAddress(inventory, c.config)
    registry = f"{address.known_or_empty().address or '(registry address unknown)'}:{inventory.registry.port}"
    print_line(f"{STEP}: {len(wanted)} images from {registry} on {len(nodes)} nodes")
    modes = Modes(check=check)
    work = pull_on(wanted, per_node, retries, engine)
    task = HostTask(
        step_context(c, inventory, modes), work, lambda ctx: (facts.DOCKER, facts.PODMAN), address, c.config, STEP
    )
    finish(fan_out(nodes, task, parallel_or_default(c, parallel)), check, with_engine=True)
