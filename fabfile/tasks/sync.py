"""sync-images: Kolla images into the local registry, namespace kept, digests compared first; the lock
written after (or followed, with --locked); a release's snapshot tags made."""

from __future__ import annotations

import time
from pathlib import Path

from invoke import Context
from invoke.exceptions import Exit

from ..actions.sync import SyncImages
from ..actions.tags import UPSTREAM
from ..engine.report import Result, finish, print_line
from ..images.archive import ArchiveError, read_archive
from ..images.lock import DEFAULT_NAME, Lock, lock_from_rows, write_lock
from ..images.lock_read import LockError, read_lock
from ..images.model import Image
from ..images.sync_plan import SyncSource, snapshot_tag
from ..images.sync_report import STEP
from ..model import grammar
from ..model.context import Modes
from ..model.inventory import ImageSettings, Inventory
from ..model.outcome import FAILED, Outcome
from .cli import (
    JSON_HELP,
    host_task,
    image_settings_or_exit,
    inventory_or_exit,
    lock_or_exit,
    run_action,
    setting,
    tagged_or_exit,
)


@host_task(
    help={
        "images": "YAML file with the image list, shaped like the inventory's images: section "
        "(default: that section)",
        "archive": "a `docker save` archive or an OCI image layout (tar or folder, an export-images bundle) on "
        "this machine to copy from, instead of the upstream registry (default: images.archive)",
        "locked": "a lock file (or an export-images bundle holding one): copy exactly its images at their locked "
        "digests, fetched by digest, never a newer image under the same tag; fails naming every image whose "
        "digest the upstream no longer has. Writes no lock",
        "release": "tag every image also TAG-RELEASE (a snapshot tag no later sync moves; default: the lock's "
        "release with --locked, else today's date when images.snapshot is true, else none)",
        "parallel": "how many blobs to copy at once (default: kolla_registry.sync_parallel, 4)",
        "retries": "attempts after the first when a blob fails for a transient reason, 5 s apart (default 3)",
        "check": "change nothing; say which images would be copied",
        "diff": "show each image that would be copied, and from where",
        "json": JSON_HELP,
    }
)
def sync_images(
    c: Context, images="", archive="", locked="", release="", parallel=0, retries=3, check=False, diff=False, json=False
):
    """Copy Kolla images into the local registry, skipping those it already holds; write the lock."""
    inventory = inventory_or_exit()
    lock = lock_or_exit(locked) if locked else None
    settings = _settings(inventory, images, lock)
    found = None if lock else tagged_or_exit(c, inventory, images, UPSTREAM)
    needed_by = found.needed_by or None if found else None
    listed = lock.images if lock else list(found.images)
    release = release or (lock.release if lock else "") or (time.strftime("%Y%m%d", time.gmtime()) if settings.snapshot else "")
    _check_release(release, listed)
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
    source = SyncSource(settings, archive, index, password, workers, retries, needed_by, lock, release)
    # One deployment host at a time: each copy is already parallel, blob by blob.
    result = run_action(c, inventory, SyncImages(listed, source), Modes(check, diff), 1, json=json)
    if not check and lock is None:
        _write_lock(result, settings, release, lock_path(inventory, images, settings), json)
    finish(result, json)


def lock_path(inventory: Inventory, images: str, settings: ImageSettings) -> str:
    """images.lock, else kolla-images.lock.yaml beside the file that holds the image list."""
    return settings.lock or str(Path(images or inventory.path).resolve().parent / DEFAULT_NAME)


def _settings(inventory: Inventory, images: str, lock: Lock | None) -> ImageSettings:
    """The image list's settings (the upstream, its login, an archive); a lock alone names its upstream."""
    if lock is not None and not images and inventory.images is None:
        return ImageSettings(registry=lock.registry, insecure=lock.insecure)
    return image_settings_or_exit(inventory, images)


def _check_release(release: str, images: list[Image]) -> None:
    """A release name that makes a valid tag of every image, or exit status 2 naming the first it does not."""
    if not release:
        return
    if not grammar.IMAGE_TAG.fullmatch(release):
        raise Exit(f"error: --release: {release!r} is not a release name (letters, digits, '.', '_', '-')", code=2)
    for image in images:
        if not grammar.IMAGE_TAG.fullmatch(snapshot_tag(image.tag, release)):
            raise Exit(f"error: --release: {image.name}'s snapshot tag would be over 128 characters", code=2)


def _write_lock(result: Result, settings: ImageSettings, release: str, path: str, quiet: bool) -> None:
    """The lock of what this sync copied, tagged or found present, written atomically beside the inventory."""
    rows = next((row.data.get("images") for row in result.outcomes if row.step == STEP and row.data.get("images")), None)
    if rows is None:
        return
    previous = None
    if Path(path).exists():
        try:
            previous = read_lock(path)
        except LockError:
            previous = None  # replaced whole: the times start again
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    lock = lock_from_rows(rows, settings.registry, settings.insecure, settings.platforms, release, now, previous)
    try:
        write_lock(path, lock)
    except OSError as error:
        host = result.outcomes[0].host if result.outcomes else "localhost"
        result.outcomes.append(Outcome(host, "write-lock", FAILED, f"lock not written: {path}: {error.strerror or error}"))
        return
    left = len(rows) - len(lock.entries)
    said = f"lock {path}: {len(lock.entries)} images" + (f" ({left} not locked: failed)" if left else "")
    result.extra["lock"] = path
    if not quiet:
        print_line(f"{STEP}: {said}")
