"""configure-targets: every target node's Docker and Podman trust the registry, and pull from it."""

from __future__ import annotations

from invoke import Context

from ..actions.targets import ConfigureTargets, SurveyNodes
from ..engine.access import RegistryAccess
from ..engine.report import finish
from ..model.context import Modes, Placement
from ..model.errors import AddressUnknown
from ..model.inventory import Inventory
from ..registry.replicas.placement import Surveyed, placements
from .cli import JSON_HELP, MODE_HELP, PARALLEL_HELP, host_task, inventory_or_exit, run_action, selected_hosts

REBALANCE_HELP = "with registry.hostname: spread the nodes anew over the healthy instances (moves nodes back)"


@host_task(help={**MODE_HELP, "parallel": PARALLEL_HELP, "rebalance": REBALANCE_HELP, "json": JSON_HELP})
def configure_targets(c: Context, check=False, diff=False, repair=False, parallel=0, rebalance=False, json=False):
    """Make every target node's Docker (and Podman) trust the registry, and pull from it."""
    inventory = inventory_or_exit()
    access = RegistryAccess(inventory, c.config)
    # The deployment host is asked while the targets connect, not before.
    access.start()
    placed = survey(c, inventory, access, parallel, rebalance) if inventory.registry.hostname else {}
    action = ConfigureTargets(placed)
    finish(run_action(c, inventory, action, Modes(check, diff, repair), parallel, access, json=json), json)


def survey(c: Context, inventory: Inventory, access: RegistryAccess, parallel: int, rebalance: bool) -> dict[str, Placement]:
    """With registry.hostname: every node's /etc/hosts and view of the instances, then where each pulls from.
    A node that fails here fails on its own row later."""
    try:
        instances = access.instances()
    except AddressUnknown:
        return {}  # every node's row says why
    result = run_action(c, inventory, SurveyNodes(instances), Modes(), parallel, access)
    surveyed = {
        row.host: Surveyed(row.data.get("etc_hosts"), row.data.get("instances") or {})
        for row in result.outcomes
        if not row.failed
    }
    nodes = selected_hosts(c, inventory, inventory.targets)
    zones = {host.name: host.zone for host in nodes}
    return placements([host.name for host in nodes], instances, surveyed, inventory.registry.hostname, rebalance, zones)
