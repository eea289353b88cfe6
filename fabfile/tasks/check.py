"""check-images: proof before deploy or upgrade that every host would pass ``kolla-ansible pull``."""

from __future__ import annotations

from invoke import Context

from ..actions.check import CheckImages
from ..engine.report import finish
from ..model.context import Modes
from .cli import (
    JSON_HELP,
    PARALLEL_HELP,
    RELEASE_HELP,
    host_task,
    image_settings_or_exit,
    run_action,
)
from .pull import digests_meanwhile, node_images_or_exit


@host_task(
    help={
        "images": "YAML file with the image list, shaped like the inventory's images: section "
        "(default: that section; with images.from: kolla-ansible, each host's own images)",
        "engine": "check with docker or podman on nodes that have both (default: docker, kolla-ansible's default)",
        "release": RELEASE_HELP,
        "parallel": PARALLEL_HELP,
        "json": JSON_HELP,
    }
)
def check_images(c: Context, images="", engine="", release="", parallel=0, json=False):
    """Prove every host resolves each image it needs, with the registry's digest (nothing downloaded)."""
    start = node_images_or_exit(c, images, engine, release)
    # A pinned cloud runs an older release on purpose: not compared with the upstream's newer images.
    settings = None if start.release else image_settings_or_exit(start.inventory, images)
    # Only the verdicts need the digests: asked while the nodes connect and resolve.
    digests, upstream, _ = digests_meanwhile(start.deploy, list(start.wanted.images), settings)
    action = CheckImages(start.wanted, digests, upstream, engine)
    finish(run_action(c, start.inventory, action, Modes(), parallel, start.access, json=json), json)
