"""The benchmark (benchmarks/) runs end to end: N=2, one repetition, so that it cannot rot.

No timing is asserted here; speed is what the benchmark itself reports.
"""

from __future__ import annotations

import json
import subprocess

import pytest

from benchmarks import venv

from .conftest import PROJECT

pytestmark = pytest.mark.e2e

TOOLS = (
    "floor: ssh reload",
    "floor: ssh true + reload",
    "floor: ssh true + restart",
    "fab configure-targets",
    "fab configure-targets (TLS)",
    "ansible-core",
    "pyinfra",
)


@pytest.fixture(scope="module")
def bench_python():
    """benchmarks/.venv with ansible-core, pyinfra and matplotlib (pip, the first time)."""
    return venv.ensure()


def test_a_tiny_benchmark_writes_its_table_json_and_plot(lab, deployed, bench_python, tmp_path):
    done = subprocess.run(
        [str(bench_python), "-m", "benchmarks", "--targets", "2", "--repeat", "1", "--out", str(tmp_path)],
        cwd=PROJECT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    print(done.stdout, done.stderr)
    assert done.returncode == 0, done.stderr[-3000:]
    data = json.loads((tmp_path / "results.json").read_text())
    assert data["failures"] == []
    cells = {(cell["row"], cell["run"]): cell for cell in data["cells"] if cell["n"] == 2}
    assert set(cells) == {(tool, run) for tool in TOOLS for run in ("first", "no-op")}
    fab = [
        cells[(row, run)]
        for row in ("fab configure-targets", "fab configure-targets (TLS)")
        for run in ("first", "no-op")
    ]
    # What sshd logged: one connection per node per run, sessions as the tool makes them.
    assert [cell["connections_max"] for cell in fab] == [1, 1, 1, 1]
    assert all(cell["sessions_max"] >= 1 for cell in fab)
    assert all(cell["wall"] > 0 for cell in cells.values())
    table = (tmp_path / "results.md").read_text()
    assert "| 2 | fab configure-targets | first |" in table
    assert "| speed target | met | numbers |" in table
    assert (tmp_path / "results.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_quick_distribution_benchmark_compares_the_three_copies(lab, deployed, bench_python, tmp_path):
    done = subprocess.run(
        [str(bench_python), "benchmarks/run.py", "distribution", "--quick", "--targets", "2", "--out", str(tmp_path)],
        cwd=PROJECT,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    print(done.stdout, done.stderr)
    assert done.returncode == 0, done.stderr[-3000:]
    data = json.loads((tmp_path / "distribution.json").read_text())
    rows = {row["method"]: row for row in data["syncs"]}
    assert set(rows) == {"fab sync-images", "skopeo sync", "docker pull/push"}
    unique = data["meta"]["unique_bytes"]
    # Blob by blob: each unique layer crossed the upstream link once, and is stored once on deploy1.
    assert unique <= rows["fab sync-images"]["upstream_bytes"] < 1.1 * unique
    assert rows["fab sync-images"]["disk_bytes"] < 1.5 * unique
    # The docker loop stores every layer twice (Docker's store and the registry): the measure sees it.
    assert rows["docker pull/push"]["disk_bytes"] > 1.5 * unique
    assert [row["targets"] for row in data["pulls"]] == [2] and data["pulls"][0]["seconds"] > 0
    # The air gap: the export crossed the upstream link once per unique blob and holds each once; the
    # locked import from that bundle was timed.
    airgap = {row["method"]: row for row in data["airgap"]}
    export, imported = airgap["fab export-images"], airgap["fab sync-images --locked (from the bundle)"]
    assert unique <= export["upstream_bytes"] < 1.1 * unique and unique <= export["disk_bytes"] < 1.1 * unique
    assert imported["seconds"] > 0 and imported["read_rate"] > 0
    assert "| fab sync-images |" in (tmp_path / "distribution.md").read_text()
    assert "| fab export-images |" in (tmp_path / "distribution.md").read_text()
    assert (tmp_path / "distribution.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_quick_replicas_benchmark_spreads_the_pull_over_the_instances(lab, deployed, bench_python, tmp_path):
    done = subprocess.run(
        [str(bench_python), "benchmarks/run.py", "replicas", "--quick", "--instances", "1,2", "--targets", "2",
         "--tls-targets", "2", "--out", str(tmp_path)],
        cwd=PROJECT,
        capture_output=True,
        text=True,
        timeout=1500,
        check=False,
    )  # fmt: skip
    print(done.stdout, done.stderr)
    assert done.returncode == 0, done.stderr[-3000:]
    data = json.loads((tmp_path / "replicas.json").read_text())
    rows = {(row["tls"], row["instances"]): row for row in data["rows"]}
    assert set(rows) == {(False, 1), (False, 2), (True, 1), (True, 2)}
    unique = data["meta"]["unique_bytes"]
    for (tls, count), row in rows.items():
        # Spread to within one node: at K=2 each of the two nodes resolves the name to its own instance.
        assert len(set(row["placed"].values())) == count and row["most_nodes"] == 3 - count
        # Every byte crossed a shaped link: each instance sent each of its nodes the whole set.
        assert all(sent >= unique * (3 - count) for sent in row["sent_bytes"].values()), (tls, count, row)
        assert 0 < row["cpu_busy"] <= 1
    table = (tmp_path / "replicas.md").read_text()
    assert "2 targets, TLS and login:" in table and "| 2 | 2 |" in table  # TLS against plain, at N=2 and K=2
