"""pull-images: every target pre-pulls the synced images from the local registry, like ``kolla-ansible pull``."""

from __future__ import annotations

import functools
from collections.abc import Mapping

from invoke import Context
from invoke.exceptions import Exit

from ..actions.pull import PullImages, RegistryDigests
from ..engine.access import RegistryAccess
from ..engine.report import finish, print_line
from ..engines import NAMES
from ..images.model import Image, upstream_base, upstream_logins
from ..images.pull_plan import STEP, PullOrder
from ..images.wanted import Wanted, at_release
from ..model.awaited import in_background
from ..model.context import Modes
from ..model.inventory import ImageSettings, Inventory
from .cli import (
    JSON_HELP,
    PARALLEL_HELP,
    RELEASE_HELP,
    host_task,
    inventory_or_exit,
    release_or_pin,
    run_action,
    selected_hosts,
    step_context,
    tagged_or_exit,
)

# Pulls at once on a node: small images (kolla's leaves) spend more time in manifests and unpacking than
# on the link, so 3 left a node's link idle between them (benchmarks/README.md, kolla-sets).
PER_NODE = 8
# Beyond the command's own timeout: connecting to the deployment host, reading the answer.
CONNECT_MARGIN = 120


@host_task(
    help={
        "images": "YAML file with the image list, shaped like the inventory's images: section "
        "(default: that section)",
        "parallel": PARALLEL_HELP,
        "per_node": "images pulled at once on each node (default 8; dockerd downloads 3 layers at a time, "
        "the others meanwhile fetch manifests and unpack)",
        "retries": "attempts after the first when a pull fails for a transient reason, 5 s apart (default 3)",
        "check": "change nothing; say which images each node lacks",
        "diff": "list each image each node would pull",
        "engine": "pull with docker or podman on nodes that have both (default: docker, kolla-ansible's "
        "default kolla_container_engine; elsewhere the node's only one)",
        "release": RELEASE_HELP,
        "json": JSON_HELP,
    }
)
def pull_images(
    c: Context, images="", parallel=0, per_node=PER_NODE, retries=3, check=False, diff=False, engine="", release="", json=False
):
    """Pre-pull the synced images on every target from the local registry, like kolla-ansible pull."""
    inventory, access, release, wanted = node_images_or_exit(c, images, engine, release)
    nodes = selected_hosts(c, inventory, inventory.targets)
    # The digests (and sizes) are needed only when a node plans: asked meanwhile, not before it connects.
    digests, _, sizes = digests_meanwhile(c, inventory, list(wanted.images))
    registry = f"{access.known_or_empty().address or '(registry address unknown)'}:{inventory.registry.port}"
    if not json:
        each = f" ({wanted.source}: each node its own)" if wanted.by_host is not None else ""
        each = each or (f" at release {release}" if release else "")
        print_line(f"{STEP}: {len(wanted.images)} images{each} from {registry} on {len(nodes)} nodes")
    action = PullImages(PullOrder(wanted, digests, per_node, retries, engine, sizes))
    finish(run_action(c, inventory, action, Modes(check, diff), parallel, access, json=json), json)


def node_images_or_exit(c: Context, images: str, engine: str, release: str) -> tuple[Inventory, RegistryAccess, str, Wanted]:
    """What pull-images and check-images start from: ``--engine`` checked (exit 2), the inventory, the
    registry's access asked in the background (the nodes' view, learnt while the pin is read), the
    release and the images at it."""
    if engine not in ("", *NAMES):
        raise Exit(f"error: --engine: {engine!r} is not one of {', '.join(NAMES)}", code=2)
    inventory = inventory_or_exit()
    access = RegistryAccess(inventory, c.config)
    access.start()
    release = release_or_pin(c, inventory, release)
    return inventory, access, release, at_release(tagged_or_exit(c, inventory, images), release)


def registry_digests(
    c: Context, inventory: Inventory, images: list[Image], upstream: ImageSettings | None = None
) -> tuple[dict[Image, str], dict[Image, str], dict[Image, int]]:
    """The registry's digest of each image (and, given the upstream's settings, the upstream's), and its
    size in the registry (config and layers), from the deployment host; {} when it cannot tell (every
    node then pulls every image, as kolla-ansible would)."""
    base = upstream_base(upstream) if upstream else ""
    logins = upstream_logins(upstream) if upstream else []
    action = RegistryDigests(images, base, logins)
    result = run_action(c, inventory, action, Modes(), 1, hosts=(inventory.deploy_host,))
    found = next((row.data for row in result.outcomes if not row.failed), {})
    return tuple(  # type: ignore[return-value]
        {image: (found.get(kind) or {})[image.name] for image in images if image.name in (found.get(kind) or {})}
        for kind in ("digests", "upstream", "sizes")
    )


def digests_meanwhile(
    c: Context, inventory: Inventory, images: list[Image], upstream: ImageSettings | None = None
) -> tuple[Mapping[Image, str], Mapping[Image, str], Mapping[Image, int]]:
    """``registry_digests`` asked in the background from now on; each mapping waits for it when first read
    (bounded by the command timeout; a failure is the reading node's error)."""
    wait = step_context(c, inventory).limits.command_timeout + CONNECT_MARGIN
    ask = functools.partial(registry_digests, c, inventory, images, upstream)
    return in_background(ask, "the registry's digests", wait, 3)  # type: ignore[return-value]
