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
from .docker.verify import docker_login, engine_missing
from .engine.address import RegistryAddress
from .engine.context import Modes
from .engine.fanout import HostTask, fan_out, finish
from .engine.hostrun import HostRun
from .engine.result import print_line
from .images.model import Image, image_list
from .images.pull import STEP, check_script, parse_pulls, pull_outcome, pull_script
from .remote import facts


def pull_on(images: list[Image], per_node: int, retries: int):
    """The work on one node: pull (or, in check mode, look for) every image, in one round trip."""

    def work(run: HostRun) -> None:
        started = time.monotonic()
        if engine_missing(run, STEP):
            return
        wanted = {image.at(run.ctx.registry): image for image in images}
        script = check_script(list(wanted)) if run.check else pull_script(list(wanted), per_node, retries)
        if run.ctx.login and not run.check:
            script = "\n".join([*docker_login(run.ctx), script])
        pulls = parse_pulls(run.run(script), wanted)
        outcome = pull_outcome(run.host.name, pulls, run.check, run.ctx.inventory.registry.secure)
        outcome.seconds, outcome.engine = time.monotonic() - started, run.facts.engine
        run.report(outcome)

    return work


@host_task(
    help={
        "images": "YAML file with the image list, shaped like the inventory's images: section "
        "(default: that section)",
        "parallel": PARALLEL_HELP,
        "per_node": "how many images each node pulls at once (default 3)",
        "retries": "attempts after the first when a pull fails for a transient reason, 5 s apart (default 3)",
        "check": "pull nothing; say which images each node lacks",
    }
)
def pull_images(c: Context, images="", parallel=0, per_node=3, retries=3, check=False):
    """Pre-pull the synced images on every target from the local registry, like kolla-ansible pull."""
    inventory = inventory_or_exit()
    wanted = image_list(image_settings_or_exit(inventory, images))
    nodes = selected_hosts(c, inventory, inventory.targets)
    if not nodes:
        raise Exit(f"error: {inventory.path}: targets: no target nodes listed", code=2)
    address = RegistryAddress(inventory, c.config)
    registry = f"{address.known_or_empty().address or '(registry address unknown)'}:{inventory.registry.port}"
    print_line(f"{STEP}: {len(wanted)} images from {registry} on {len(nodes)} nodes")
    modes = Modes(check=check)
    work = pull_on(wanted, per_node, retries)
    task = HostTask(
        step_context(c, inventory, modes), work, lambda ctx: (facts.DOCKER,), address, c.config, STEP
    )
    finish(fan_out(nodes, task, parallel_or_default(c, parallel)), check, with_engine=True)
