"""export-images: carry the images to a site without internet, as one OCI image layout with its lock."""

from __future__ import annotations

import os
import time

from invoke import Context
from invoke.exceptions import Exit

from ..actions.export import ExportImages
from ..actions.tags import UPSTREAM
from ..engine.report import Result, finish, print_line
from ..images.export import STEP, Bundle, put_lock
from ..images.lock import Lock, lock_from_rows
from ..model.context import Modes
from ..model.inventory import HERE, ImageSettings, Inventory
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
        "to": "the bundle to write on this machine: a folder, or a tar with --tar (or a name ending .tar); "
        "an interrupted export resumes there, keeping every blob whose sha256 is right",
        "locked": "a lock file (sync-images writes one): exactly its images at their locked digests, with its "
        "release's snapshot tags (default: the image list as the upstream tags it now)",
        "tar": "write one tar file instead of a folder (blobs one at a time, no copy on disk)",
        "images": "YAML file with the image list, shaped like the inventory's images: section (default: that section)",
        "parallel": "how many blobs to fetch at once into a folder (default: kolla_registry.sync_parallel, 4)",
        "retries": "attempts after the first when a blob fails for a transient reason, 5 s apart (default 3)",
        "check": "write nothing; say which images would be exported",
        "diff": "list each name the bundle would give an image",
        "json": JSON_HELP,
    }
)
def export_images(
    c: Context, to="", locked="", tar=False, images="", parallel=0, retries=3, check=False, diff=False, json=False
):
    """Write the images (of a lock, or the image list) from the upstream into an OCI layout here, with the lock."""
    if not to:
        raise Exit("error: --to: where to write the bundle (a folder, or a tar)", code=2)
    path = os.path.abspath(os.path.expanduser(to))
    as_tar = bool(tar) or path.endswith(".tar")
    if os.path.exists(path) and os.path.isdir(path) == as_tar:
        raise Exit(f"error: --to: {path} is {'a folder' if as_tar else 'a file'}; give {'a folder' if not as_tar else 'a tar'}", code=2)
    inventory = inventory_or_exit()
    lock = lock_or_exit(locked) if locked else None
    settings = _settings(inventory, images, lock)
    listed = tuple(lock.images if lock else tagged_or_exit(c, inventory, images, UPSTREAM, here=True).images)
    password = ""
    if settings.password_file:
        with open(settings.password_file, encoding="utf-8") as secret:
            password = secret.read().strip()
    workers = parallel or setting(c, "sync_parallel", 4)
    bundle = Bundle(path, as_tar, settings, listed, lock, password, workers, retries)
    result = run_action(c, inventory, ExportImages(bundle), Modes(check, diff), 1, hosts=(HERE,), json=json)
    if not check:
        _lock_into_bundle(result, bundle, json)
    finish(result, json)


def _settings(inventory: Inventory, images: str, lock: Lock | None) -> ImageSettings:
    """The upstream (and its login) from the image list; a lock alone names its upstream."""
    if lock is not None and not images and inventory.images is None:
        return ImageSettings(registry=lock.registry, insecure=lock.insecure)
    return image_settings_or_exit(inventory, images)


def _lock_into_bundle(result: Result, bundle: Bundle, quiet: bool) -> None:
    """The bundle's lock: the one followed, or the digests this export found, of the images it holds."""
    rows = next((row.data.get("images") for row in result.outcomes if row.step == STEP and row.data.get("images")), None)
    if not rows or not any(item.get("status") == "exported" for item in rows):
        return
    if bundle.lock is not None:
        exported = {item["image"] for item in rows if item.get("status") == "exported"}
        entries = tuple(entry for entry in bundle.lock.entries if entry.image.name in exported)
        lock = Lock(bundle.lock.registry, bundle.lock.insecure, entries, bundle.lock.platforms, bundle.lock.release)
    else:
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        settings = bundle.settings
        lock = lock_from_rows(rows, settings.registry, settings.insecure, settings.platforms, "", now)
    try:
        put_lock(bundle.path, bundle.tar, lock)
    except OSError as error:
        result.outcomes.append(Outcome(HERE.name, "write-lock", FAILED, f"lock not written into {bundle.path}: {error}"))
        return
    if not quiet:
        print_line(f"{STEP}: lock of {len(lock.entries)} images in {bundle.path}")
