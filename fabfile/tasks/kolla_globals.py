"""kolla-globals: point kolla-ansible's globals.yml on the deployment host at the local registry."""

from __future__ import annotations

from invoke import Context
from invoke.exceptions import Exit

from ..actions.kolla import KollaGlobals
from ..kolla.globals_yaml import GLOBALS_PATH
from ..kolla.release_pin import UNPIN
from ..model import grammar
from ..model.context import Modes
from ..model.inventory import ImageSettings
from .cli import (
    JSON_HELP,
    MODE_HELP,
    PARALLEL_HELP,
    host_task,
    inventory_or_exit,
    run_and_finish,
    setting,
    tagged_or_exit,
)


@host_task(
    help={
        "path": f"globals.yml on the deployment host (default: kolla_registry.globals_path, {GLOBALS_PATH})",
        "namespace": "docker_namespace to set (default: the inventory's images.namespace, openstack.kolla)",
        "release": "pin every Kolla image to its snapshot tag TAG-RELEASE (made by sync-images --release), in "
        "globals.d/zz-kolla-registry-release.yml, once the registry holds every image of the list there; "
        "another release rolls the pin back or forward; none removes it",
        "images": "YAML file with the image list the release must hold, shaped like the inventory's images: "
        "section (default: that section)",
        "check": MODE_HELP["check"],
        "diff": MODE_HELP["diff"],
        "parallel": PARALLEL_HELP,
        "json": JSON_HELP,
    }
)
def kolla_globals(
    c: Context, path="", namespace="", release="", images="", check=False, diff=False, parallel=0, json=False
):
    """Point kolla-ansible's globals.yml at the local registry; pin it to a release with --release."""
    inventory = inventory_or_exit()
    path = path or setting(c, "globals_path", GLOBALS_PATH)
    if not grammar.matches(grammar.HOST_PATH, path):
        raise Exit(f"error: --path: {path!r} is not an absolute path without blanks or shell syntax", code=2)
    if release and not grammar.IMAGE_TAG.fullmatch(release):
        raise Exit(f"error: --release: {release!r} is not a release name (letters, digits, '.', '_', '-')", code=2)
    pinning = release not in ("", UNPIN) and bool(images or inventory.images)
    listed = list(tagged_or_exit(c, inventory, images).images) if pinning else []
    action = KollaGlobals(path, namespace or (inventory.images or ImageSettings()).namespace, release, listed)
    run_and_finish(c, inventory, action, Modes(check, diff), parallel, json)
