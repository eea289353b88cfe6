"""kolla-globals: point kolla-ansible's globals.yml on the deployment host at the local registry."""

from __future__ import annotations

from invoke import Context
from invoke.exceptions import Exit

from . import grammar
from .cli import (
    MODE_HELP,
    PARALLEL_HELP,
    host_task,
    inventory_or_exit,
    parallel_or_default,
    selected_hosts,
    setting,
    step_context,
)
from .engine.address import RegistryAddress
from .engine.context import Modes
from .engine.converge import converge
from .engine.fanout import HostTask, fan_out, finish
from .engine.hostrun import HostRun
from .inventory import ImageSettings
from .kolla.globals_yaml import GLOBALS_PATH, globals_planner, kolla_files
from .remote import facts


@host_task(
    help={
        "path": f"globals.yml on the deployment host (default: kolla_registry.globals_path, {GLOBALS_PATH})",
        "namespace": "docker_namespace to set (default: the inventory's images.namespace, openstack.kolla)",
        "check": MODE_HELP["check"],
        "diff": MODE_HELP["diff"],
        "parallel": PARALLEL_HELP,
    }
)
def kolla_globals(c: Context, path="", namespace="", check=False, diff=False, parallel=0):
    """Point kolla-ansible's globals.yml at the local registry (three keys, nothing else)."""
    inventory = inventory_or_exit()
    path = path or setting(c, "globals_path", GLOBALS_PATH)
    if not grammar.matches(grammar.HOST_PATH, path):
        raise Exit(f"error: --path: {path!r} is not an absolute path without blanks or shell syntax", code=2)
    planner = globals_planner(path, namespace or (inventory.images or ImageSettings()).namespace)

    def work(run: HostRun) -> None:
        run.report(converge(run, planner)[0])

    hosts = selected_hosts(c, inventory, (inventory.deploy_host,))
    ctx = step_context(c, inventory, Modes(check, diff))
    address = RegistryAddress(inventory, c.config)
    task = HostTask(ctx, work, lambda ctx: (facts.files(*kolla_files(path)),), address, c.config, "kolla-globals")
    finish(fan_out(hosts, task, parallel_or_default(c, parallel)), check)
