"""status: every host at once, read-only: reachable, OS, Docker and podman, trust, the registry from there."""

from __future__ import annotations

from invoke import Context

from ..actions.status import Status
from ..engine.access import RegistryAccess
from ..engine.report import Result, finish
from ..kolla.globals_yaml import GLOBALS_PATH
from ..model.context import Modes
from ..model.inventory import Inventory
from ..registry.status import HostStatus, host_role, status_table, unreachable_status, with_kolla_notes
from .cli import JSON_HELP, PARALLEL_HELP, host_task, inventory_or_exit, run_action, setting, wanted_or_exit


@host_task(help={"json": JSON_HELP, "parallel": PARALLEL_HELP})
def status(c: Context, json=False, parallel=0):
    """Show every host at once, read-only: reachable, OS, Docker, trust, /v2/ and the catalog; exit 1 if any is down."""
    inventory = inventory_or_exit()
    access = RegistryAccess(inventory, c.config, serving=True)
    globals_path = setting(c, "globals_path", GLOBALS_PATH)
    wanted = wanted_or_exit(inventory, "") if inventory.images is not None else None
    action = Status(inventory, globals_path, lambda: access.known_or_empty().address, wanted)
    result = run_action(c, inventory, action, Modes(), parallel, access, json=json)
    known = access.known_or_empty().address
    registry = f"{inventory.registry.hostname or known}:{inventory.registry.port}" if known else ""
    rows = status_rows(inventory, result)
    with_kolla_notes(rows, action.facts_of, registry, inventory.registry.secure, globals_path)
    releases = action.releases(registry)
    for row in rows:
        row.release = releases.get(row.host, "")
    for row, outcome in zip(rows, result.outcomes, strict=True):
        outcome.data = row.__dict__
    result.extra = {"registry": registry}
    finish(result, json, render=lambda _: status_table(rows, registry))


def status_rows(inventory: Inventory, result: Result) -> list[HostStatus]:
    """Each host's row: what it told, or why it could not be reached."""
    rows = []
    for outcome in result.outcomes:
        host = inventory.resolve(outcome.host)
        if outcome.data:
            rows.append(HostStatus(**outcome.data))
        else:
            rows.append(unreachable_status(host, host_role(inventory, host), outcome.message))
    return rows
