"""The replicas benchmark's report: each pull against its floor and K = 1, and TLS against plain (arithmetic only)."""

from __future__ import annotations

from benchmarks.replicas_bench import markdown

MB = 1_000_000
# 80 Mbit/s is 10 MB/s: ten nodes of 100 MB from one instance take 100 s at the floor.
META = {"images": 12, "unique_bytes": 100 * MB, "rate": "80mbit", "cpus": 2, "seconds": 600}


def _row(count: int, seconds: float, tls: bool = False, targets: int = 10) -> dict:
    most = -(-targets // count)
    return {
        "tls": tls,
        "instances": count,
        "targets": targets,
        "seconds": seconds,
        "sent_bytes": {f"host{i}": most * 100 * MB for i in range(count)},
        "cpu_busy": 0.25,
        "most_nodes": most,
    }


def test_each_k_is_set_against_its_floor_k1_and_the_goal():
    table = markdown([_row(1, 100.0), _row(2, 64.0), _row(4, 30.0)], META)
    assert "10 targets, plain HTTP:" in table
    assert "| 1 | 100.0 s | 100.0 s | 1.00 | 80 Mbit/s | 1.00 | met | 10 of 10 | 100% | 25% |" in table
    # 100 / 64 = 1.56 of K = 1, short of 0.8 x 2.
    assert "| 2 | 64.0 s | 50.0 s | 1.28 | 125 Mbit/s | 1.56 | MISSED (1.6 wanted) | 5 of 10 | 78% | 25% |" in table
    # Three nodes on the busiest of four instances: 3 x 10 s at the link, 30 s, the link full.
    assert "| 4 | 30.0 s | 25.0 s | 1.20 | 267 Mbit/s | 3.33 | met | 3 of 10 | 100% | 25% |" in table
    assert "TLS and login against plain" not in table


def test_tls_is_set_against_plain_at_the_same_k_and_n():
    rows = [_row(1, 100.0), _row(2, 50.0), _row(1, 105.0, tls=True), _row(2, 60.0, tls=True)]
    table = markdown(rows, META)
    assert "10 targets, TLS and login:" in table
    assert "| 10 | 1 | 80 Mbit/s | 76 Mbit/s | 0.95 | yes |" in table
    assert "| 10 | 2 | 160 Mbit/s | 133 Mbit/s | 0.83 | NO |" in table


def test_a_failed_pull_keeps_its_row_and_the_others_their_figures():
    failed = {"tls": False, "instances": 2, "targets": 10, "error": "fab pull-images: exit 1: node3 refused"}
    table = markdown([_row(1, 100.0), failed], META)
    assert "| 2 | failed: fab pull-images: exit 1: node3 refused | 50.0 s |" in table
    assert "| 1 | 100.0 s |" in table
