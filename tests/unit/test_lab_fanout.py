"""The lab works on many hosts at once: bounded, every host finished, failures named, lists kept short."""

from __future__ import annotations

import threading
import time

import pytest

from tests.lab import fanout
from tests.lab.errors import LabError


def test_every_host_is_worked_on_and_results_come_in_the_names_order(monkeypatch):
    monkeypatch.setenv(fanout.PARALLEL_ENV, "4")
    names = [f"node{i}" for i in range(1, 21)]

    def slow_first(name: str) -> str:
        time.sleep(0.05 if name == "node1" else 0)
        return name.upper()

    assert list(fanout.each(slow_first, names, "booting").items()) == [(name, name.upper()) for name in names]


def test_no_more_hosts_at_once_than_allowed(monkeypatch):
    monkeypatch.setenv(fanout.PARALLEL_ENV, "3")
    running, most = 0, 0
    lock = threading.Lock()

    def work(name: str) -> None:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        time.sleep(0.02)
        with lock:
            running -= 1

    fanout.each(work, [f"node{i}" for i in range(12)], "starting")
    assert most == 3


def test_a_failing_host_does_not_stop_the_others_and_the_error_names_each(monkeypatch):
    monkeypatch.setenv(fanout.PARALLEL_ENV, "2")
    done = []

    def work(name: str) -> None:
        if name in ("node2", "node4"):
            raise LabError(f"{name} did not boot within 180s\n(systemd: starting)")
        done.append(name)

    with pytest.raises(LabError) as raised:
        fanout.each(work, ["node1", "node2", "node3", "node4", "node5"], "booting")
    assert sorted(done) == ["node1", "node3", "node5"]
    assert str(raised.value) == (
        "booting failed on 2 of 5 hosts: node2: node2 did not boot within 180s (systemd: starting); "
        "node4: node4 did not boot within 180s (systemd: starting)"
    )


def test_many_failures_name_the_first_three_in_full_and_list_the_rest():
    with pytest.raises(LabError, match=r"failed on 5 of 5 hosts: a: OSError; b: OSError; c: OSError \(and 2 more: d, e\)$"):
        fanout.each(lambda name: (_ for _ in ()).throw(OSError()), list("abcde"), "removing")


def test_a_bad_width_is_named(monkeypatch):
    monkeypatch.setenv(fanout.PARALLEL_ENV, "many")
    with pytest.raises(LabError, match="KOLLA_LAB_PARALLEL='many' is not a number of hosts"):
        fanout.each(str, ["node1"], "starting")


def test_long_lists_of_hosts_are_shortened_to_runs():
    names = ["deploy1", *(f"node{i}" for i in range(1, 101)), "store1", "replica1"]
    assert fanout.shortened(names) == "deploy1, node1..node100, store1, replica1"
    assert fanout.shortened(["node2", "node3", "node5", "node7", "node8"]) == "node2..node3, node5, node7..node8"
    assert fanout.shortened([]) == ""
