"""prune-registry: delete the tags of old releases from the registry, then free their space.

Only the image list's repositories are pruned (``--all-repositories``: every
one). The current image list's tags stay, and the ``--keep`` newest other
images of each repository (one by default: the release before, to roll back
to), and every tag whose image has no creation date. The rest are deleted by
digest through the writer on the deployment host, and the registry's garbage
collection frees their blobs, with the host's lock held meanwhile; every instance
(read-only, on the one store) keeps serving.
"""

from __future__ import annotations

from invoke import Context
from invoke.exceptions import Exit

from ..actions.prune import PruneRegistry
from ..images.model import image_list
from ..images.prune_plan import pins_from
from ..model.context import Modes
from .cli import (
    JSON_HELP,
    PARALLEL_HELP,
    host_task,
    image_settings_or_exit,
    inventory_or_exit,
    lock_or_exit,
    run_and_finish,
    tagged_or_exit,
)


@host_task(
    iterable=["lock"],
    help={
        "keep": "how many other images to keep per repository besides the current list's and the kept releases', "
        "newest first (by the image's created time; default 1: the release before, to roll back to)",
        "lock": "a lock file (or an export bundle) whose release's snapshot tags and locked digests stay, whatever "
        "--keep says; may be given again (besides images.keep_releases)",
        "images": "YAML file with the current image list, shaped like the inventory's images: section "
        "(default: that section); its tags are always kept",
        "all-repositories": "prune every repository in the registry, not only the image list's (--check shows "
        "what that would delete besides)",
        "check": "change nothing; list the tags that would be deleted and the space expected back",
        "diff": "list each tag that would be deleted",
        "parallel": PARALLEL_HELP,
        "json": JSON_HELP,
    }
)
def prune_registry(
    c: Context, keep=1, images="", lock=None, all_repositories=False, check=False, diff=False, parallel=0, json=False
):
    """Delete old releases' tags from the image list's repositories (kept releases stay) and garbage-collect."""
    inventory = inventory_or_exit()
    if int(keep) < 0:
        raise Exit("error: --keep: must be 0 or more", code=2)
    settings = image_settings_or_exit(inventory, images)
    current = list(tagged_or_exit(c, inventory, images).images) if settings.tag_filter else image_list(settings)
    pins = pins_from(settings.keep_releases, [lock_or_exit(path) for path in lock or ()])
    action = PruneRegistry(current, int(keep), bool(all_repositories), pins)
    run_and_finish(c, inventory, action, Modes(check, diff), parallel, json)
