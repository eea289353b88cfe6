"""Where each node pulls from: every node's /etc/hosts and its view of the instances, assigned, planned.

The facts of one node cannot balance all of them, so with ``registry.hostname``
configure-targets first surveys every node (one exec each: its /etc/hosts and
a /v2/ probe of every instance), computes the assignment with the pure
``assign`` function (zone first), and then configures each node with its own
placement: its instance, and every instance in the order it should try them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ...model.context import Placement, StepContext
from ...model.facts import HostFacts
from ...model.plan import StepPlan
from ..access import Instance
from .assign import assign, healthy_set, mirror_order
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
    zones: Mapping[str, str] | None = None,
) -> dict[str, Placement]:
    """Each surveyed node's placement, with a note where it moves (and why); ``zones``: each node's zone."""
    by_address = {instance.address: instance.name for instance in instances}
    address_of = {instance.name: instance.address for instance in instances}
    names = [instance.name for instance in instances]
    zone_of = {**(zones or {}), **{instance.name: instance.zone for instance in instances}}
    current = {node: by_address.get(current_address(seen.etc_hosts, hostname), "") for node, seen in surveyed.items()}
    healthy = healthy_set(names, {node: seen.instances for node, seen in surveyed.items()})
    chosen = assign([node for node in nodes if node in surveyed], names, healthy, current, rebalance, zone_of)
    placed = {}
    for node, name in chosen.items():
        zone = zone_of.get(node, "")
        fallback = zone if zone and zone_of.get(name, "") != zone else ""
        mirrors = tuple(address_of[instance] for instance in mirror_order(node, name, names, zone_of))
        note = _move_note(current.get(node, ""), name, zone, healthy, rebalance, zone_of)
        if fallback and note:
            note += f"; zone {zone} has no healthy instance"
        placed[node] = Placement(name, address_of[name], note, mirrors, fallback)
    return placed


def _move_note(
    before: str, after: str, zone: str, healthy: set[str], rebalance: bool, zone_of: Mapping[str, str]
) -> str:
    """Why a node moves from ``before`` to ``after``; "" when it does not move (or had none)."""
    if not before or before == after:
        return ""
    if before not in healthy:
        why = "does not answer /v2/"
    elif zone and zone_of.get(after, "") == zone != zone_of.get(before, ""):
        why = f"back in zone {zone}"
    else:
        why = "--rebalance" if rebalance else "spread"
    return f"moved from {before} ({why})"


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
