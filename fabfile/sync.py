"""sync-images: Kolla images into the local registry, namespace kept, digests compared first.

The image list and every decision (which image is already there, which to
copy, what failed) are pure functions; the deployment host does the copying,
registry to registry over the HTTP API, blob by blob (remote/copyrun.py): from
the upstream, or out of an archive (``docker save``, or an OCI image layout)
uploaded there for hosts with no outside access.
"""

from __future__ import annotations

import time

from invoke import Context
from invoke.exceptions import Exit

from .cli import (
    MODE_HELP,
    host_task,
    image_settings_or_exit,
    inventory_or_exit,
    selected_hosts,
    setting,
    step_context,
)
from .engine.address import RegistryAddress
from .engine.context import Modes
from .engine.fanout import HostTask, fan_out, finish
from .engine.hostrun import HostRun
from .engine.result import CHANGED, FAILED, OK, print_line
from .images.archive import ArchiveError, read_archive
from .images.model import COPIED, image_list, upstream_base
from .images.sync import Syncer
from .images.table import STEP, table, totals
from .remote import facts

# Only the engine's version, for the recap: the copy itself does not use Docker.
SECTIONS = (facts.DOCKER,)


@host_task(
    help={
        "images": "YAML file with the image list, shaped like the inventory's images: section "
        "(default: that section)",
        "archive": "a `docker save` archive or an OCI image layout (tar or folder) on this machine to copy "
        "from, instead of the upstream registry (default: images.archive)",
        "parallel": "how many blobs to copy at once (default: kolla_registry.sync_parallel, 4)",
        "retries": "attempts after the first when a blob fails for a transient reason, 5 s apart (default 3)",
        "check": "change nothing; say which images would be copied",
        "diff": MODE_HELP["diff"],
    }
)
def sync_images(c: Context, images="", archive="", parallel=0, retries=3, check=False, diff=False):
    """Copy Kolla images into the local registry, skipping those it already holds."""
    inventory = inventory_or_exit()
    settings = image_settings_or_exit(inventory, images)
    archive = archive or settings.archive or ""
    try:
        index = read_archive(archive) if archive else {}
    except ArchiveError as error:
        raise Exit(f"error: {error}", code=2) from None
    wanted = image_list(settings)
    workers = parallel or setting(c, "sync_parallel", 4)

    password = ""
    if settings.password_file:
        with open(settings.password_file, encoding="utf-8") as secret:
            password = secret.read().strip()

    def work(run: HostRun) -> None:
        started = time.monotonic()
        syncer = Syncer(run, settings, archive, index, workers, retries, password)
        plan = syncer.plan(wanted)
        source = archive or upstream_base(settings)
        print_line(f"{run.host.name} | {STEP} | {totals(plan)}, from {source} to {syncer.local}")
        results = syncer.copy(plan)
        print_line("\n" + table(results, check))
        failed = any(result.failed for result in results)
        status = FAILED if failed else CHANGED if any(r.status == COPIED for r in results) else OK
        run.report(run.outcome(STEP, status, totals(results), started))

    hosts = selected_hosts(c, inventory, (inventory.deploy_host,))
    ctx = step_context(c, inventory, Modes(check, diff))
    task = HostTask(ctx, work, lambda ctx: SECTIONS, RegistryAddress(inventory, c.config, serving=True), c.config, STEP)
    finish(fan_out(hosts, task, 1), check)
