"""The kolla-sets benchmark's report: repeated pulls as the median [min-max], each beside its floor (arithmetic only)."""

from __future__ import annotations

from benchmarks.kolla_bench import ALL, OWN, markdown, spread, summary

MB = 1_000_000
META = {"kolla_ansible": "23.0.0", "images": 32, "per_host": {"node1": 29, "node2": 9}, "rate": "400mbit", "repeat": 3}
CHECKS = {"nodes": 20, "seconds": 1.45, "seconds_min": 1.40, "seconds_max": 1.61, "floor_seconds": 1.19}


def test_the_median_run_is_the_row_and_the_others_its_spread():
    runs = [{"seconds": 16.3, "bytes": 664 * MB}, {"seconds": 15.2, "bytes": 663 * MB}, {"seconds": 15.9, "bytes": 663 * MB}]
    row = summary(OWN, runs, 13.2, "400mbit")
    assert (row["seconds"], row["seconds_min"], row["seconds_max"]) == (15.9, 15.2, 16.3)
    assert row["bytes"] == 663 * MB
    # 13.2 s at 400 Mbit/s (50 MB/s) is 660 MB.
    assert round(row["floor_bytes"]) == 660 * MB
    assert row["runs"] == runs


def test_each_pull_shows_its_median_spread_and_ratio_to_the_floor():
    own = summary(OWN, [{"seconds": s, "bytes": 663 * MB} for s in (15.9, 15.2, 16.3)], 13.2, "400mbit")
    every = summary(ALL, [{"seconds": s, "bytes": 1046 * MB} for s in (25.7, 25.0, 26.0)], 20.8, "400mbit")
    table = markdown([own, every], CHECKS, META)
    assert "3 runs each, the median [min-max]" in table
    assert "| each host its own images | 15.9 [15.2-16.3] | 13.2 | 1.20 | 663 MB | 660 MB | 1.005 |" in table
    assert "| every image to every target | 25.7 [25.0-26.0] | 20.8 | 1.24 | 1046 MB | 1040 MB | 1.006 |" in table
    assert "| fab check-images | 20 | 1.45 [1.40-1.61] | 1.19 | 1.22 |" in table


def test_one_run_shows_no_spread():
    assert spread({"seconds": 15.94, "seconds_min": 15.94, "seconds_max": 15.94}, ".1f") == "15.9"
    # Runs that differ by less than the shown precision still show it, as equal bounds.
    assert spread({"seconds": 15.94, "seconds_min": 15.91, "seconds_max": 15.96}, ".1f") == "15.9 [15.9-16.0]"
