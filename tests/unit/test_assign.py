"""Which instance each node pulls from: even, stable, failing over, and not moving back unasked."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from collections.abc import Mapping
from pathlib import Path

import pytest

from fabfile.registry.replicas.assign import assign, healthy_set, ranked, weight

PROJECT = Path(__file__).resolve().parents[2]
NODES = [f"node{i}" for i in range(1, 61)]
THREE = ["deploy1", "replica1", "replica2"]
# sha256(b"NODE\0INSTANCE")'s first 8 bytes, big-endian, worked out apart from the code under test.
KNOWN_WEIGHTS = {
    ("node1", "deploy1"): 10662979608603638410,
    ("node1", "replica1"): 7120237853744987493,
    ("node2", "deploy1"): 6653651665423524311,
    ("node42", "replica2"): 10143991546947335044,
}


def moves(before: Mapping[str, str], after: Mapping[str, str]) -> dict[str, tuple[str, str]]:
    """The nodes whose instance changes: node -> (from, to); a node without one before moves from ""."""
    return {node: (before.get(node, ""), instance) for node, instance in after.items() if before.get(node) != instance}


def spread(assignment: dict[str, str], instances: list[str]) -> tuple[int, int]:
    counts = Counter(assignment.values())
    return min(counts.get(i, 0) for i in instances), max(counts.get(i, 0) for i in instances)


ELSEWHERE = """
import json, sys
from fabfile.registry.replicas.assign import assign, ranked, weight
pairs, nodes, three = json.loads(sys.argv[1])
print(json.dumps({
    "weights": [weight(node, instance) for node, instance in pairs],
    "ranked": {node: ranked(node, three) for node in nodes},
    "assigned": assign(nodes, three, set(three), {}),
}))
"""


def computed_elsewhere(hash_seed: str) -> dict:
    """What another Python process, with its own string hashing, computes: another machine's run."""
    arguments = json.dumps([list(KNOWN_WEIGHTS), NODES, THREE])
    env = {**os.environ, "PYTHONHASHSEED": hash_seed, "PYTHONPATH": str(PROJECT)}
    done = subprocess.run(
        [sys.executable, "-c", ELSEWHERE, arguments], env=env, cwd=PROJECT, capture_output=True, text=True,
        check=True, timeout=60,
    )
    return json.loads(done.stdout)


def test_weights_are_the_same_on_every_machine_and_differ_per_pair():
    here = [weight(node, instance) for node, instance in KNOWN_WEIGHTS]
    assert here == list(KNOWN_WEIGHTS.values())
    for seed in ("1", "4242"):
        elsewhere = computed_elsewhere(seed)
        assert elsewhere["weights"] == here
        assert elsewhere["ranked"] == {node: ranked(node, THREE) for node in NODES}
        assert elsewhere["assigned"] == assign(NODES, THREE, set(THREE), {})
    assert weight("node1", "deploy1") != weight("node2", "deploy1")
    assert ranked("node1", THREE) == ranked("node1", list(reversed(THREE)))


@pytest.mark.parametrize("count", [1, 2, 3, 7, 10, 60])
@pytest.mark.parametrize("instances", [THREE[:1], THREE[:2], THREE, [*THREE, "replica3"]])
def test_a_fresh_cloud_is_spread_within_one(count, instances):
    assignment = assign(NODES[:count], instances, set(instances), {})
    low, high = spread(assignment, instances)
    assert high - low <= 1
    assert set(assignment) == set(NODES[:count])


def test_the_same_inputs_give_the_same_answer_and_a_second_run_moves_nobody():
    first = assign(NODES, THREE, set(THREE), {})
    assert assign(NODES, THREE, set(THREE), {}) == first
    assert assign(NODES, THREE, set(THREE), first) == first


def test_adding_an_instance_moves_about_a_quarter_of_the_nodes_and_only_to_it():
    before = assign(NODES, THREE, set(THREE), {})
    four = [*THREE, "replica3"]
    after = assign(NODES, four, set(four), before)
    moved = moves(before, after)
    assert {to for _, to in moved.values()} == {"replica3"}
    assert len(moved) == len(NODES) // 4  # exactly what the new one needs for an even spread
    assert spread(after, four)[1] - spread(after, four)[0] <= 1


def test_adding_an_instance_moves_the_nodes_rendezvous_would_move():
    before = assign(NODES, THREE, set(THREE), {})
    four = [*THREE, "replica3"]
    moved = set(moves(before, assign(NODES, four, set(four), before)))
    preferring_new = {node for node in NODES if ranked(node, four)[0] == "replica3"}
    # Most moved nodes rank the new instance first: the hash, not the list order, picks them.
    assert len(moved & preferring_new) >= len(moved) * 2 // 3


def test_a_down_instance_loses_all_its_nodes_and_no_other_node_moves():
    before = assign(NODES, THREE, set(THREE), {})
    after = assign(NODES, THREE, {"deploy1", "replica2"}, before)
    moved = moves(before, after)
    assert set(moved) == {node for node, instance in before.items() if instance == "replica1"}
    assert all(to != "replica1" for _, to in moved.values())
    low, high = spread(after, ["deploy1", "replica2"])
    assert high - low <= 1


def test_a_returning_instance_gets_nodes_back_only_as_far_as_the_spread_needs():
    before = assign(NODES[:4], THREE, set(THREE), {})
    failed_over = assign(NODES[:4], THREE, {"deploy1", "replica2"}, before)
    back = assign(NODES[:4], THREE, set(THREE), failed_over)
    # 4 nodes on 2 instances (2+2), the third back with 0: off by 2, so one node moves to it, no more.
    assert len(moves(failed_over, back)) == 1
    assert Counter(back.values())["replica1"] == 1


def test_no_move_back_while_the_spread_is_within_one():
    nodes = NODES[:2]
    before = {"node1": "deploy1", "node2": "replica2"}  # replica1 had none, or came back
    assert assign(nodes, THREE, set(THREE), before) == before


def test_rebalance_restores_the_spread_of_a_fresh_cloud():
    fresh = assign(NODES, THREE, set(THREE), {})
    skewed = assign(NODES, THREE, {"deploy1"}, fresh)
    assert set(skewed.values()) == {"deploy1"}
    assert assign(NODES, THREE, set(THREE), skewed, rebalance=True) == fresh
    half = assign(NODES, THREE, {"deploy1", "replica2"}, fresh)
    assert assign(NODES, THREE, set(THREE), half, rebalance=True) == fresh


def test_a_node_on_an_unknown_instance_or_none_gets_its_best_healthy_one():
    assignment = assign(["node1", "node2"], THREE, set(THREE), {"node1": "gone", "node2": ""})
    assert set(assignment.values()) <= set(THREE)
    assert len(set(assignment.values())) == 2


def test_with_no_instance_healthy_nodes_stay_where_they_are():
    assert assign(["node1", "node2"], THREE, set(), {"node1": "replica1"}) == {
        "node1": "replica1",
        "node2": ranked("node2", THREE)[0],
    }


def test_one_instance_takes_every_node():
    assert set(assign(NODES, ["deploy1"], {"deploy1"}, {}).values()) == {"deploy1"}


def test_health_is_the_majority_view_of_the_nodes_that_checked():
    answers = {
        "node1": {"deploy1": True, "replica1": False},
        "node2": {"deploy1": True, "replica1": False},
        "node3": {"deploy1": False, "replica1": False},
    }
    assert healthy_set(["deploy1", "replica1", "replica2"], answers) == {"deploy1", "replica2"}


def test_half_the_nodes_reaching_an_instance_keeps_it_healthy():
    answers = {"node1": {"deploy1": True}, "node2": {"deploy1": False}}
    assert healthy_set(["deploy1"], answers) == {"deploy1"}
