"""kolla-globals: point kolla-ansible's globals.yml on the deployment host at the local registry."""

from __future__ import annotations

from invoke import Context
from invoke.exceptions import Exit

from ..actions.kolla import KollaGlobals
from ..kolla.globals_yaml import GLOBALS_PATH
from ..model import grammar
from ..model.context import Modes
from ..model.inventory import ImageSettings
from .cli import JSON_HELP, MODE_HELP, PARALLEL_HELP, host_task, inventory_or_exit, run_and_finish, setting


@host_task(
    help={
        "path": f"globals.yml on the deployment host (default: kolla_registry.globals_path, {GLOBALS_PATH})",
        "namespace": "docker_namespace to set (default: the inventory's images.namespace, openstack.kolla)",
        "check": MODE_HELP["check"],
        "diff": MODE_HELP["diff"],
        "parallel": PARALLEL_HELP,
        "json": JSON_HELP,
    }
)
def kolla_globals(c: Context, path="", namespace="", check=False, diff=False, parallel=0, json=False):
    """Point kolla-ansible's globals.yml at the local registry (three keys, nothing else)."""
    inventory = inventory_or_exit()
    path = path or setting(c, "globals_path", GLOBALS_PATH)
    if not grammar.matches(grammar.HOST_PATH, path):
        raise Exit(f"error: --path: {path!r} is not an absolute path without blanks or shell syntax", code=2)
    action = KollaGlobals(path, namespace or (inventory.images or ImageSettings()).namespace)
    run_and_finish(c, inventory, action, Modes(check, diff), parallel, json)
