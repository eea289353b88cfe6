"""Which instance each node pulls from: a pure function of nodes, instances, zones, health and where nodes are now.

Rendezvous (highest-random-weight) hashing ranks the instances for each node,
so adding an instance draws about 1/K of the nodes to it and removing one
moves only its own nodes. A node keeps its current instance while that one
is healthy (moving costs nothing but is pointless churn), unless asked to
rebalance; a balancing pass then evens the counts to within one, moving first
the nodes that move anyway, then those that rank the emptier instance highest.

Zones (a rack, a row, an availability zone) narrow the choice: a node with a
zone picks among the healthy instances of its own zone while there is one,
among all healthy instances only when there is none, and goes back to its
zone as soon as one there is healthy again. Nodes that choose among the same
instances are balanced together.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Mapping, Sequence


def weight(node: str, instance: str) -> int:
    """The rendezvous weight of ``instance`` for ``node``: the same on every machine, every run."""
    return int.from_bytes(hashlib.sha256(f"{node}\0{instance}".encode()).digest()[:8], "big")


def ranked(node: str, instances: Sequence[str]) -> list[str]:
    """``instances`` from the one ``node`` prefers most to the one it prefers least."""
    return sorted(instances, key=lambda instance: (-weight(node, instance), instance))


def choices(node: str, usable: Sequence[str], zones: Mapping[str, str]) -> tuple[str, ...]:
    """The healthy instances ``node`` may use: those of its zone when one is, else every one (a fallback)."""
    zone = zones.get(node, "")
    own = tuple(instance for instance in usable if zone and zones.get(instance, "") == zone)
    return own or tuple(usable)


def assign(
    nodes: Sequence[str],
    instances: Sequence[str],
    healthy: Collection[str],
    current: Mapping[str, str],
    rebalance: bool = False,
    zones: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Each node's instance: kept while healthy and in its choices (unless ``rebalance``), else its best
    choice; then balanced so that no two instances differ by more than one node among the nodes that
    share the same choices. ``zones``: the zone of each node and instance, by name ("" or absent: none).

    With no healthy instance at all, nodes keep what they have (there is nowhere better to go).
    """
    zones = zones or {}
    usable = [instance for instance in instances if instance in healthy]
    if not usable:
        return {node: current.get(node) or ranked(node, instances)[0] for node in nodes if instances}
    groups: dict[tuple[str, ...], list[str]] = {}
    for node in nodes:
        groups.setdefault(choices(node, usable, zones), []).append(node)
    chosen: dict[str, str] = {}
    for allowed, members in groups.items():
        picked = {}
        for node in members:
            kept = current.get(node)
            picked[node] = kept if kept in allowed and not rebalance else ranked(node, allowed)[0]
        # Spread anew: the same answer as for a fresh cloud, whatever the nodes have now.
        chosen.update(_balanced(picked, list(allowed), {} if rebalance else current))
    return {node: chosen[node] for node in nodes}


def mirror_order(node: str, assigned: str, instances: Sequence[str], zones: Mapping[str, str]) -> list[str]:
    """Every instance in the order ``node`` should try them: its own first, then the rest of its zone,
    then the other zones, each part in the node's rendezvous order (the same on every run)."""
    zone = zones.get(node, "")
    rest = [instance for instance in ranked(node, instances) if instance != assigned]
    same = [instance for instance in rest if zone and zones.get(instance, "") == zone]
    return [assigned, *same, *(instance for instance in rest if instance not in same)]


def _balanced(chosen: dict[str, str], usable: list[str], current: Mapping[str, str]) -> dict[str, str]:
    """Move one node at a time from the fullest instance to the emptiest until they differ by at most one."""
    while True:
        counts = {instance: 0 for instance in usable}
        for instance in chosen.values():
            counts[instance] += 1
        fullest = max(usable, key=lambda instance: (counts[instance], instance))
        emptiest = min(usable, key=lambda instance: (counts[instance], instance))
        if counts[fullest] - counts[emptiest] <= 1:
            return chosen
        movable = [node for node, instance in chosen.items() if instance == fullest]
        # A node already leaving its current instance moves for free; else the one that ranks the target highest.
        node = max(movable, key=lambda n: (current.get(n) != fullest, weight(n, emptiest), n))
        chosen[node] = emptiest


def healthy_set(instances: Sequence[str], answers: Mapping[str, Mapping[str, bool]]) -> set[str]:
    """The instances that answered /v2/ from at least half of the nodes that checked them.

    One node with a broken link must not move everyone's nodes; an instance no node checked counts as healthy.
    """
    found = set()
    for instance in instances:
        votes = [seen[instance] for seen in answers.values() if instance in seen]
        if not votes or 2 * sum(votes) >= len(votes):
            found.add(instance)
    return found
