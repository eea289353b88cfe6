"""Which instance each node pulls from: a pure function of nodes, instances, health and where nodes are now.

Rendezvous (highest-random-weight) hashing ranks the instances for each node,
so adding an instance draws about 1/K of the nodes to it and removing one
moves only its own nodes. A node keeps its current instance while that one
is healthy (moving costs nothing but is pointless churn), unless asked to
rebalance; a balancing pass then evens the counts to within one, moving first
the nodes that move anyway, then those that rank the emptier instance highest.
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


def assign(
    nodes: Sequence[str],
    instances: Sequence[str],
    healthy: Collection[str],
    current: Mapping[str, str],
    rebalance: bool = False,
) -> dict[str, str]:
    """Each node's instance: kept while healthy (unless ``rebalance``), else its best healthy one; then
    balanced so that no two healthy instances differ by more than one node.

    With no healthy instance at all, nodes keep what they have (there is nowhere better to go).
    """
    usable = [instance for instance in instances if instance in healthy]
    if not usable:
        return {node: current.get(node) or ranked(node, instances)[0] for node in nodes if instances}
    chosen: dict[str, str] = {}
    for node in nodes:
        kept = current.get(node)
        chosen[node] = kept if kept in usable and not rebalance else ranked(node, usable)[0]
    # Spread anew: the same answer as for a fresh cloud, whatever the nodes have now.
    return _balanced(chosen, usable, {} if rebalance else current)


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
