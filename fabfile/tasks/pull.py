"""pull-images: every target pre-pulls the synced images from the local registry, like ``kolla-ansible pull``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from invoke import Context
from invoke.exceptions import Exit

from ..actions.pull import PullImages, RegistryDigests
from ..engine.access import RegistryAccess
from ..engine.deploy_session import DeploySession, Turn
from ..engine.report import finish, print_line
from ..engines import NAMES
from ..facts.base import files
from ..images.model import Image, upstream_base, upstream_logins
from ..images.pull_plan import STEP, PullOrder
from ..images.wanted import Wanted, at_release
from ..kolla.globals_yaml import GLOBALS_PATH
from ..kolla.release_pin import pin_path, pinned_release
from ..model.awaited import parts
from ..model.context import Modes
from ..model.inventory import ImageSettings, Inventory
from .cli import (
    JSON_HELP,
    PARALLEL_HELP,
    RELEASE_HELP,
    host_task,
    inventory_or_exit,
    release_flag_or_exit,
    run_action,
    selected_hosts,
    setting,
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
    start = node_images_or_exit(c, images, engine, release)
    inventory, wanted = start.inventory, start.wanted
    nodes = selected_hosts(c, inventory, inventory.targets)
    # The digests (and sizes) are needed only when a node plans: asked meanwhile, not before it connects.
    digests, _, sizes = digests_meanwhile(start.deploy, list(wanted.images))
    registry = f"{start.access.known_or_empty().address or '(registry address unknown)'}:{inventory.registry.port}"
    if not json:
        each = f" ({wanted.source}: each node its own)" if wanted.by_host is not None else ""
        each = each or (f" at release {start.release}" if start.release else "")
        print_line(f"{STEP}: {len(wanted.images)} images{each} from {registry} on {len(nodes)} nodes")
    action = PullImages(PullOrder(wanted, digests, per_node, retries, engine, sizes))
    finish(run_action(c, inventory, action, Modes(check, diff), parallel, start.access, json=json), json)


@dataclass(frozen=True)
class NodeImages:
    """What pull-images and check-images start from."""

    inventory: Inventory
    # The registry's access, learnt in the deployment host's session: the nodes' view.
    access: RegistryAccess
    # The deployment host's session: the pin read, the digests still to ask.
    deploy: DeploySession
    release: str
    wanted: Wanted


def node_images_or_exit(c: Context, images: str, engine: str, release: str) -> NodeImages:
    """``--engine`` checked (exit 2), the inventory, the deployment host's session started (the registry's
    access learnt in it), the release (``--release``, else the pin read on the deployment host) and the images at it."""
    if engine not in ("", *NAMES):
        raise Exit(f"error: --engine: {engine!r} is not one of {', '.join(NAMES)}", code=2)
    release = release_flag_or_exit(release)
    inventory = inventory_or_exit()
    ctx = step_context(c, inventory)
    deploy = DeploySession(inventory, ctx, c.config, ctx.limits.command_timeout + CONNECT_MARGIN)
    pin = pin_path(setting(c, "globals_path", GLOBALS_PATH))
    deploy.start((files(pin),) if release is None else ())
    # The nodes' view of the registry: from the session's first turn, which gathers its access too.
    access = RegistryAccess(inventory, c.config)
    access.follow(deploy.gathered)
    # The image list is read (kolla-ansible's set computed) while the pin is.
    tagged = tagged_or_exit(c, inventory, images)
    if release is None:
        release = pinned_release(deploy.first().files.get(pin))
    return NodeImages(inventory, access, deploy, release, at_release(tagged, release))


def digests_meanwhile(
    deploy: DeploySession, images: list[Image], upstream: ImageSettings | None = None
) -> tuple[Mapping[Image, str], Mapping[Image, str], Mapping[Image, int]]:
    """The registry's digest of each image (and, given the upstream's settings, the upstream's), and its size
    in the registry (config and layers), asked in the deployment host's session from now on; each mapping
    waits for it when first read. {} when it cannot tell (every node then pulls every image, as
    kolla-ansible would)."""
    base = upstream_base(upstream) if upstream else ""
    query = RegistryDigests(images, base, upstream_logins(upstream) if upstream else [])
    answer = deploy.then(Turn(query.sections, query.found, ({}, {}, {})))
    return parts(answer, "the registry's digests", deploy.timeout, 3)  # type: ignore[return-value]
