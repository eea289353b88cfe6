"""The configure-targets benchmark's goal checks (arithmetic only): issue 21's TLS rows beside issue 23's."""

from __future__ import annotations

from benchmarks.bench import FAB, FAB_TLS, FIRST, FLOOR_RESTART, FLOOR_SSH_RELOAD, NOOP, Results
from benchmarks.measure import Measurement
from benchmarks.report import cells, checks


def _sample(wall: float) -> Measurement:
    return Measurement(wall, 0.5, 1.0, {"node1": 1}, {"node1": 1}, True, 50_000_000)


def _results(tls_noop: float | None) -> Results:
    results = Results()
    walls = {(FLOOR_SSH_RELOAD, FIRST): 1.4, (FLOOR_RESTART, FIRST): 6.0, (FLOOR_RESTART, NOOP): 1.2,
             (FAB, FIRST): 3.4, (FAB, NOOP): 1.3}  # fmt: skip
    if tls_noop is not None:
        walls |= {(FAB_TLS, FIRST): 3.5, (FAB_TLS, NOOP): tls_noop}
    for (row, run), wall in walls.items():
        results.add(20, row, run, _sample(wall))
    return results


def _found(results: Results) -> dict[str, tuple[bool, str]]:
    return {check.target: (check.met, check.numbers) for check in checks(cells(results))}


def test_the_tls_no_op_is_held_to_1_2x_ssh_true_and_the_first_run_to_the_restart_floor():
    met = _found(_results(tls_noop=1.40))
    assert met["TLS first run <= ssh true + restart (N=20)"][0]
    assert met["TLS no-op run <= 1.2x ssh true (N=20)"] == (True, "1.40 s vs 1.20 s (1.17x)")

    missed = _found(_results(tls_noop=1.92))
    assert missed["TLS no-op run <= 1.2x ssh true (N=20)"] == (False, "1.92 s vs 1.20 s (1.60x)")


def test_without_tls_rows_there_is_no_tls_check():
    assert not any(target.startswith("TLS") for target in _found(_results(tls_noop=None)))
