"""prune-registry: delete the tags of old releases from the registry, then free their space.

The current image list's tags stay, and the ``--keep`` newest other images of
each repository (one by default: the release before, to roll back to). The
rest are deleted by digest through the registry API, and the registry's
garbage collection frees their blobs with the registry read-only meanwhile.
"""

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
from .docker import tls
from .docker.collect import GC_PENDING
from .docker.registry import create_registry
from .engine.address import RegistryAddress
from .engine.context import Modes, StepContext
from .engine.fanout import HostTask, fan_out, finish
from .engine.hostrun import HostRun, RemoteError
from .engine.result import CHANGED, FAILED, OK, print_line
from .images.model import Image, image_list
from .images.prune import PrunePlan
from .images.prune_table import STEP, table, totals
from .images.pruner import Pruner
from .remote import facts

NOT_DEPLOYED = (
    "the registry container is not as deploy-host makes it (deletes need REGISTRY_STORAGE_DELETE_ENABLED, "
    "set from this version on): run fab deploy-host first"
)
LEFTOVER = "garbage left by an earlier run that did not finish"


def prune_sections(ctx: StepContext) -> tuple[facts.Section, ...]:
    """What prune reads: the registry container as create-registry plans it, and pending garbage."""
    settings = ctx.inventory.registry
    return (
        facts.DOCKER,
        *facts.DOCKER_CONFIG,
        facts.container(settings.name),
        facts.image(settings.image),
        *tls.tls_sections(ctx),
        facts.files(GC_PENDING),
    )


@host_task(
    help={
        "keep": "how many other images to keep per repository besides the current list's, newest first "
        "(by the image's created time; default 1: the release before, to roll back to)",
        "images": "YAML file with the current image list, shaped like the inventory's images: section "
        "(default: that section); its tags are always kept",
        "check": "change nothing; list the tags that would be deleted and the space expected back",
        "parallel": PARALLEL_HELP,
    }
)
def prune_registry(c: Context, keep=1, images="", check=False, parallel=0):
    """Delete old releases' tags from the registry and garbage-collect their space (read-only meanwhile)."""
    inventory = inventory_or_exit()
    if int(keep) < 0:
        raise Exit("error: --keep: must be 0 or more", code=2)
    if inventory.registry.replicas:
        # Garbage collection must see no push meanwhile; read-only mode here leaves the replicas writable.
        raise Exit(f"error: {inventory.path}: registry.replicas: prune-registry does not collect a shared store yet", code=2)
    current = image_list(image_settings_or_exit(inventory, images))
    hosts = selected_hosts(c, inventory, (inventory.deploy_host,))
    ctx = step_context(c, inventory, Modes(check))
    address = RegistryAddress(inventory, c.config, serving=True)
    task = HostTask(ctx, work(current, int(keep)), prune_sections, address, c.config, STEP)
    finish(fan_out(hosts, task, parallel_or_default(c, parallel)), check)


def work(current: list[Image], keep: int):
    """What prune does on one deployment host."""

    def on(run: HostRun) -> None:
        started = time.monotonic()
        registry = create_registry(run.facts, run.ctx)
        if registry.error:
            run.report(run.outcome(STEP, FAILED, registry.error, started))
            return
        pruner = Pruner(run, current, keep)
        plan = pruner.plan()
        leftover = GC_PENDING in run.facts.files
        if run.check or registry.changed or not (plan.deletes or leftover):
            # What would go; a prune shows its table once it has deleted.
            print_line("\n" + table(plan, planned=True))
        if not plan.deletes and not leftover:
            run.report(run.outcome(STEP, OK, f"nothing to delete: {totals(plan)}", started))
        elif registry.changed:
            run.report(run.outcome(STEP, FAILED, NOT_DEPLOYED, started))
        elif run.check:
            run.report(run.outcome(STEP, CHANGED, _would(plan, leftover), started))
        else:
            run.report(run.outcome(STEP, *prune(pruner, plan), started))

    return on


def prune(pruner: Pruner, plan: PrunePlan) -> tuple[str, str]:
    """Delete, then collect; (status, message) for the row, the table printed once deleted."""
    before = pruner.usage()
    plan = pruner.delete(plan)
    failed = [repo for repo in plan.repositories if repo.status == FAILED]
    try:
        after, collected = pruner.collect(plan.delete_untagged)
    except RemoteError as error:
        print_line("\n" + table(plan))
        return FAILED, f"{totals(plan)}; garbage collection: {error}"
    print_line("\n" + table(plan))
    used = (before, after) if before is not None and after is not None else None
    message = totals(plan, used) + ("" if used else "; volume usage unknown")
    message += "".join(f"; {note}" for note in (*plan.notes, collected) if note)
    if failed:
        return FAILED, f"{message}; {failed[0].name}: {failed[0].message}"
    return CHANGED, message


def _would(plan: PrunePlan, leftover: bool) -> str:
    """The check-mode row: what would be deleted and freed, and garbage an earlier run left."""
    parts = [totals(plan)] if plan.deletes else []
    parts += [f"would collect {LEFTOVER}"] if leftover else []
    return "; ".join(parts + list(plan.notes))
