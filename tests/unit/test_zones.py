"""Zones: a node pulls from its own zone while one instance there is healthy, elsewhere only when none is, and back."""

from __future__ import annotations

from collections import Counter

from fabfile.registry.replicas.assign import assign, choices, mirror_order, ranked

A_NODES = [f"a{i}" for i in range(1, 31)]
B_NODES = [f"b{i}" for i in range(1, 31)]
NODES = A_NODES + B_NODES
INSTANCES = ["deploy1", "replica1", "replica2", "replica3"]
# Two instances in each zone; every node in one.
ZONES = {
    "deploy1": "a",
    "replica1": "a",
    "replica2": "b",
    "replica3": "b",
    **dict.fromkeys(A_NODES, "a"),
    **dict.fromkeys(B_NODES, "b"),
}
ALL = set(INSTANCES)


def zone_of(assignment: dict[str, str]) -> dict[str, str]:
    return {node: ZONES[instance] for node, instance in assignment.items()}


def test_every_node_maps_to_its_own_zone_spread_within_one_there():
    placed = assign(NODES, INSTANCES, ALL, {}, zones=ZONES)
    assert all(zone_of(placed)[node] == ZONES[node] for node in NODES)
    counts = Counter(placed.values())
    assert abs(counts["deploy1"] - counts["replica1"]) <= 1 and abs(counts["replica2"] - counts["replica3"]) <= 1
    assert sum(counts[name] for name in ("deploy1", "replica1")) == len(A_NODES)


def test_one_instance_of_a_zone_down_moves_its_nodes_within_the_zone():
    before = assign(NODES, INSTANCES, ALL, {}, zones=ZONES)
    after = assign(NODES, INSTANCES, ALL - {"replica2"}, before, zones=ZONES)
    moved = {node for node in NODES if before[node] != after[node]}
    assert moved == {node for node, instance in before.items() if instance == "replica2"}
    assert {after[node] for node in moved} == {"replica3"}


def test_a_zone_with_no_healthy_instance_falls_back_to_the_others_and_nothing_else_moves():
    before = assign(NODES, INSTANCES, ALL, {}, zones=ZONES)
    after = assign(NODES, INSTANCES, {"deploy1", "replica1"}, before, zones=ZONES)
    assert all(after[node] == before[node] for node in A_NODES)
    assert {after[node] for node in B_NODES} == {"deploy1", "replica1"}
    fallback = Counter(after[node] for node in B_NODES)
    assert abs(fallback["deploy1"] - fallback["replica1"]) <= 1


def test_nodes_go_back_to_their_zone_when_it_recovers_without_rebalance():
    before = assign(NODES, INSTANCES, ALL, {}, zones=ZONES)
    failed_over = assign(NODES, INSTANCES, {"deploy1", "replica1"}, before, zones=ZONES)
    back = assign(NODES, INSTANCES, ALL, failed_over, zones=ZONES)
    assert all(zone_of(back)[node] == "b" for node in B_NODES)
    assert back == before  # each node's best in its zone again: where it was
    assert all(back[node] == failed_over[node] for node in A_NODES)


def test_one_instance_back_in_a_zone_takes_the_whole_zone_back():
    before = assign(NODES, INSTANCES, ALL, {}, zones=ZONES)
    failed_over = assign(NODES, INSTANCES, {"deploy1", "replica1"}, before, zones=ZONES)
    partly = assign(NODES, INSTANCES, ALL - {"replica3"}, failed_over, zones=ZONES)
    assert {partly[node] for node in B_NODES} == {"replica2"}


def test_a_node_without_a_zone_or_with_an_empty_one_uses_every_healthy_instance():
    assert choices("c1", INSTANCES, ZONES) == tuple(INSTANCES)
    assert choices("c1", INSTANCES, {**ZONES, "c1": "c"}) == tuple(INSTANCES)  # zone c has no instance
    assert choices("a1", ["replica2", "replica3"], ZONES) == ("replica2", "replica3")  # a: none healthy


def test_without_zones_the_assignment_is_the_one_before_zones():
    three = INSTANCES[:3]
    plain = assign(NODES, three, set(three), {})
    assert assign(NODES, three, set(three), {}, zones={}) == plain
    assert assign(NODES, three, set(three), {}, zones=dict.fromkeys([*NODES, *three], "a")) == plain


def test_a_node_tries_its_own_instance_then_its_zone_then_the_rest_in_a_fixed_order():
    order = mirror_order("b7", "replica3", INSTANCES, ZONES)
    assert order[:2] == ["replica3", "replica2"]
    assert sorted(order[2:]) == ["deploy1", "replica1"]
    assert order[2:] == [instance for instance in ranked("b7", INSTANCES) if ZONES[instance] == "a"]
    assert mirror_order("b7", "replica3", list(reversed(INSTANCES)), ZONES) == order
    # On a fallback (its zone down) its own instance is still first, then its zone's, for when they return.
    assert mirror_order("b7", "deploy1", INSTANCES, ZONES)[:3] == ["deploy1", *[i for i in ranked("b7", INSTANCES) if ZONES[i] == "b"]]
    assert mirror_order("x1", "deploy1", INSTANCES, {}) == ["deploy1", *[i for i in ranked("x1", INSTANCES) if i != "deploy1"]]
