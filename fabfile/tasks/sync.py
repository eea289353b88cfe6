"""sync-images: Kolla images into the local registry, namespace kept, digests compared first."""

from __future__ import annotations

from invoke import Context
from invoke.exceptions import Exit

from ..actions.sync import SyncImages
from ..images.archive import ArchiveError, read_archive
from ..images.sync_plan import SyncSource
from ..model.context import Modes
from .cli import (
    JSON_HELP,
    host_task,
    image_settings_or_exit,
    inventory_or_exit,
    run_and_finish,
    setting,
    wanted_or_exit,
)


@host_task(
    help={
        "images": "YAML file with the image list, shaped like the inventory's images: section "
        "(default: that section)",
        "archive": "a `docker save` archive or an OCI image layout (tar or folder) on this machine to copy "
        "from, instead of the upstream registry (default: images.archive)",
        "parallel": "how many blobs to copy at once (default: kolla_registry.sync_parallel, 4)",
        "retries": "attempts after the first when a blob fails for a transient reason, 5 s apart (default 3)",
        "check": "change nothing; say which images would be copied",
        "diff": "show each image that would be copied, and from where",
        "json": JSON_HELP,
    }
)
def sync_images(c: Context, images="", archive="", parallel=0, retries=3, check=False, diff=False, json=False):
    """Copy Kolla images into the local registry, skipping those it already holds."""
    inventory = inventory_or_exit()
    settings = image_settings_or_exit(inventory, images)
    wanted = wanted_or_exit(inventory, images)
    archive = archive or settings.archive or ""
    try:
        index = read_archive(archive) if archive else {}
    except ArchiveError as error:
        raise Exit(f"error: {error}", code=2) from None
    password = ""
    if settings.password_file:
        with open(settings.password_file, encoding="utf-8") as secret:
            password = secret.read().strip()
    workers = parallel or setting(c, "sync_parallel", 4)
    source = SyncSource(settings, archive, index, password, workers, retries, wanted.needed_by or None)
    action = SyncImages(list(wanted.images), source)
    # One deployment host at a time: each copy is already parallel, blob by blob.
    run_and_finish(c, inventory, action, Modes(check, diff), 1, json)
