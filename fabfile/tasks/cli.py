"""The command line every task shares: flags, the inventory, and which hosts ``-H`` names.

``fab -H a,b,c TASK`` would run TASK once per host, one after the other, and
stop at the first failure. ``HostsExecutor`` (set in the project's
``fabric.yaml``) instead hands every task the whole ``-H`` list once, so a
task fans out over those hosts in parallel with one recap and one exit status.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import asdict, replace
from pathlib import Path

from fabric import Connection
from fabric.executor import Executor
from invoke import Context, Task, task
from invoke.exceptions import Exit
from invoke.tasks import Call

from ..actions.tags import REGISTRY, ListTags
from ..engine.access import RegistryAccess
from ..engine.action import Action
from ..engine.report import Result, finish
from ..engine.runner import Runner, default_parallel
from ..images.lock import Lock
from ..images.lock_read import LockError, read_lock
from ..images.model import filtered_repositories, image_list
from ..images.wanted import Wanted, every_host_wants
from ..inventory import load, load_images
from ..kolla.imageset import KollaImagesError, KollaImageSet, kolla_images, kolla_targets, wanted
from ..kolla.release_pin import UNPIN
from ..model import grammar
from ..model.context import Limits, Modes, StepContext
from ..model.inventory import Host, ImageSettings, Inventory, InventoryError, KollaSource

CLI_HOSTS = "cli_hosts"
# One meaning per short flag in every task; any other flag is long only.
SHORT_FLAGS = {"check": "c", "diff": "d", "repair": "r", "parallel": "p"}
MODE_HELP = {
    "check": "change nothing; report what would change",
    "diff": "show each file's before and after",
    "repair": "move --insecure-registry flags into daemon.json instead of refusing",
}
PARALLEL_HELP = "how many hosts to work on at once (default: kolla_registry.parallel, else every host up to 100)"
JSON_HELP = "print the result as JSON (every row, with its data, and the totals) instead of the recap"
RELEASE_HELP = (
    "each image at its snapshot tag TAG-RELEASE (default: the release kolla-globals pinned the cloud to, if any; "
    "none: the plain tags)"
)


class HostsTask(Task):
    """A task whose short flags follow ``SHORT_FLAGS``, whatever its argument order."""

    def arg_opts(self, name: str, default: str, taken_names: set[str]) -> dict:
        opts = super().arg_opts(name, default, taken_names)
        dashed = opts["names"][0]
        opts["names"] = [dashed] + ([SHORT_FLAGS[name]] if name in SHORT_FLAGS else [])
        return opts


def host_task(*args, **kwargs) -> Callable:
    """``@task`` for this project's tasks (see ``HostsTask``)."""
    return task(*args, klass=HostsTask, **kwargs)


class HostsExecutor(Executor):
    """Fabric's executor, but one call per task with all ``-H`` hosts, not one call per host."""

    def expand_calls(self, calls, apply_hosts=True):
        hosts = self.core[0].args.hosts.value if apply_hosts else None
        if not hosts:
            return super().expand_calls(calls, apply_hosts)
        expanded = []
        for call in calls:
            call = call if isinstance(call, Call) else Call(task=call)
            if isinstance(call.task, HostsTask):
                expanded += self.expand_calls(call.pre, apply_hosts=False)
                expanded.append(HostsCall(call, hosts.split(",")))
                expanded += self.expand_calls(call.post, apply_hosts=False)
            else:
                expanded += super().expand_calls([call], apply_hosts)
        return expanded


class HostsCall(Call):
    """A call whose context carries the ``-H`` host names."""

    def __init__(self, call: Call, hosts: list[str]) -> None:
        super().__init__(task=call.task, called_as=call.called_as, args=call.args, kwargs=call.kwargs)
        self.hosts = [host.strip() for host in hosts if host.strip()]

    def make_context(self, config) -> Context:
        context = super().make_context(config)
        context.config.kolla_registry[CLI_HOSTS] = self.hosts
        return context


def step_context(c: Context, inventory: Inventory, modes: Modes | None = None) -> StepContext:
    """What every host of this run plans with: the inventory, the modes, the limits from the config."""
    limits = Limits(**{name: int(setting(c, name, default)) for name, default in asdict(Limits()).items()})
    return StepContext(inventory, modes=modes or Modes(), limits=limits)


def inventory_or_exit() -> Inventory:
    """The inventory (its targets from kolla-ansible's inventory, with ``targets: kolla-ansible``), or
    exit status 2 with its one-line error."""
    try:
        inventory = load()
    except InventoryError as error:
        raise Exit(f"error: {error}", code=2) from None
    if not inventory.kolla_targets:
        return inventory
    found = kolla_set_or_exit(inventory, inventory.images.kolla)
    try:
        return replace(inventory, targets=kolla_targets(found, inventory.defaults or Host("", "")))
    except KollaImagesError as error:
        raise Exit(f"error: {inventory.path}: targets: {error}", code=2) from None


@functools.lru_cache(maxsize=4)
def kolla_set_or_exit(inventory: Inventory, source: KollaSource) -> KollaImageSet:
    """kolla-ansible's image set (once per run, and kept between runs while its inputs stay), or exit 2."""
    try:
        return kolla_images(source.inventory, source.config_dir, source.virtualenv)
    except KollaImagesError as error:
        raise Exit(f"error: {inventory.path}: images.from kolla-ansible: {error}", code=2) from None


def wanted_or_exit(inventory: Inventory, path: str) -> Wanted:
    """The images of this run: the ``--images`` file's or the inventory's list, or kolla-ansible's set."""
    settings = image_settings_or_exit(inventory, path)
    if settings.kolla is not None:
        return wanted(kolla_set_or_exit(inventory, settings.kolla))
    return every_host_wants(image_list(settings))


def lock_or_exit(path: str) -> Lock:
    """The lock at ``path`` (a file, or an export bundle), or exit status 2 with its one-line error."""
    try:
        return read_lock(path)
    except LockError as error:
        raise Exit(f"error: {error}", code=2) from None


def release_flag_or_exit(release: str) -> str | None:
    """The release ``--release`` names ("" for ``none``: the plain tags), checked (exit 2 naming it); None
    without the flag: the one kolla-globals pinned the cloud to, read on the deployment host."""
    if release == UNPIN:
        return ""
    if release and not grammar.IMAGE_TAG.fullmatch(release):
        raise Exit(f"error: --release: {release!r} is not a release name (letters, digits, '.', '_', '-')", code=2)
    return release or None


def tagged_or_exit(c: Context, inventory: Inventory, path: str, where: str = REGISTRY, here: bool = False) -> Wanted:
    """The images of this run, a tag filter's repositories' tags asked of ``where`` (the upstream, or the
    registry) first; exit 1 naming a repository whose tags could not be listed."""
    settings = image_settings_or_exit(inventory, path)
    repositories = filtered_repositories(settings) if settings.kolla is None else []
    if not repositories:
        return wanted_or_exit(inventory, path)
    action = ListTags(settings, repositories, where, here)
    result = run_action(c, inventory, action, Modes(), 1, json=True)
    found = next((row.data for row in result.outcomes if not row.failed), None)
    if not found or found.get("error") or found.get("errors"):
        reason = (found or {}).get("error") or next(iter(((found or {}).get("errors") or {}).items()), None)
        reason = reason or (result.outcomes[0].message if result.outcomes else "no answer")
        raise Exit(f"error: images.tag_filter: the {where}'s tags could not be listed: {reason}", code=1)
    return every_host_wants(image_list(settings, found["tags"]))


def image_settings_or_exit(inventory: Inventory, path: str) -> ImageSettings:
    """The ``--images`` file's list, else the inventory's; exit status 2 when neither is usable."""
    if path:
        try:
            return load_images(Path(path))
        except InventoryError as error:
            raise Exit(f"error: {error}", code=2) from None
    if inventory.images is None:
        raise Exit(f"error: {inventory.path}: images: missing (or give --images FILE)", code=2)
    return inventory.images


def selected_hosts(c: Context, inventory: Inventory, default: tuple[Host, ...]) -> tuple[Host, ...]:
    """The ``-H`` hosts (inventory hosts by name or address, else ad hoc), or ``default``."""
    if isinstance(c, Connection):
        # Run without HostsExecutor (fabric.yaml not read): Fabric calls us once per host.
        return (inventory.resolve(c.original_host),)
    names = setting(c, CLI_HOSTS, None) or ()
    for name in names:
        if inventory.find(name) is None and not grammar.is_address(name):
            raise Exit(f"error: -H: {name!r} is neither an inventory host nor a host name or address", code=2)
    return tuple(dict.fromkeys(inventory.resolve(name) for name in names)) or default


def setting(c: Context, name: str, default):
    """``kolla_registry.NAME`` from Invoke's config (see ``ns.configure``)."""
    return c.config.get("kolla_registry", {}).get(name, default)


def parallel_or_default(c: Context, parallel: int, name: str = "parallel") -> int:
    """``--parallel``, else ``kolla_registry.NAME``, else every host up to the runner's cap (``default_parallel``)."""
    return max(1, parallel or setting(c, name, 0) or default_parallel())


def run_action(
    c: Context,
    inventory: Inventory,
    action: Action,
    modes: Modes | None = None,
    parallel: int = 0,
    access: RegistryAccess | None = None,
    hosts: tuple[Host, ...] | None = None,
    json: bool = False,
) -> Result:
    """The skeleton every task shares: ``hosts``, else the ``-H`` hosts, else the action's; the context; the run.
    With ``json``, the JSON document is the only output: no progress lines, tables or diffs."""
    hosts = hosts or selected_hosts(c, inventory, action.hosts(inventory))
    if not hosts:
        raise Exit(f"error: {inventory.path}: targets: no target nodes listed", code=2)
    access = access or RegistryAccess(inventory, c.config, serving=action.serving)
    runner = Runner(action, step_context(c, inventory, modes), access, c.config, quiet=json)
    return runner.run(hosts, parallel_or_default(c, parallel))


def run_and_finish(c: Context, inventory: Inventory, action: Action, modes: Modes | None = None,
                   parallel: int = 0, json: bool = False) -> None:
    """``run_action``, then its recap (or JSON) and exit status."""
    finish(run_action(c, inventory, action, modes, parallel, json=json), json)
