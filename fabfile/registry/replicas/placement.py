"""Where each node pulls from: every node's /etc/hosts and its view of the instances, assigned, planned.

The facts of one node cannot balance all of them, so with ``registry.hostname``
configure-targets first surveys every node (one exec each: its /etc/hosts and
a /v2/ probe of every instance), computes the assignment with the pure
``assign`` function, and then configures each node with its own placement.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ...model.context import Placement, StepContext
from ...model.facts import HostFacts
from ...model.plan import StepPlan
from ..access import Instance
from .assign import assign, healthy_set
from .hosts_file import ETC_HOSTS, HostsFileError, current_address, hosts_change

STEP = "place-node"


@dataclass(frozen=True)
class Surveyed:
    """What one node told of where it pulls from: its /etc/hosts, and which instances answered it."""

    etc_hosts: str | None
    instances: Mapping[str, bool]


def placements(
    nodes: Sequence[str],
    instances: Sequence[Instance],
    surveyed: Mapping[str, Surveyed],
    hostname: str,
    rebalance: bool = False,
) -> dict[str, Placement]:
    """Each surveyed node's placement, with a note where it moves (and why)."""
    by_address = {instance.address: instance.name for instance in instances}
    address_of = {instance.name: instance.address for instance in instances}
    names = [instance.name for instance in instances]
    current = {node: by_address.get(current_address(seen.etc_hosts, hostname), "") for node, seen in surveyed.items()}
    healthy = healthy_set(names, {node: seen.instances for node, seen in surveyed.items()})
    chosen = assign([node for node in nodes if node in surveyed], names, healthy, current, rebalance)
    placed = {}
    for node, name in chosen.items():
        before = current.get(node, "")
        note = ""
        if before and before != name:
            why = "does not answer /v2/" if before not in healthy else ("--rebalance" if rebalance else "spread")
            note = f"moved from {before} ({why})"
        placed[node] = Placement(name, address_of[name], note)
    return placed


def place_node(facts: HostFacts, ctx: StepContext) -> StepPlan:
    """The node's /etc/hosts line mapping registry.hostname to its instance (no engine reload)."""
    plan = StepPlan(STEP)
    placement, hostname = ctx.placement, ctx.inventory.registry.hostname
    if placement is None or not hostname:
        return plan
    try:
        change = hosts_change(facts.files.get(ETC_HOSTS), placement.address, hostname)
    except HostsFileError as error:
        plan.error = str(error)
        return plan
    target = f"{hostname} -> {placement.name} ({placement.address})"
    if change:
        plan.files.append(change)
        plan.notes.append(f"{target}{'; ' + placement.note if placement.note else ''}")
    return plan
