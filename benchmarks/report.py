"""The results as a table (Markdown and JSON), the speed targets checked, and a plot."""

from __future__ import annotations

import json
import statistics
from dataclasses import asdict, dataclass
from pathlib import Path

from .bench import ANSIBLE, FAB, FAB_TLS, FIRST, FLOOR_RESTART, FLOOR_SSH_RELOAD, NOOP, ROWS, Results
from .measure import Measurement

# Issue 23's goals, with default flags, at the largest N.
FIRST_OF_RELOAD_FLOOR = 1.5
NOOP_OF_SSH_TRUE = 0.5
# Issue 21: a no-op with TLS, a login and a read-only registry proves trust through the engine for little more.
TLS_NOOP_OF_SSH_TRUE = 1.2
CONTROLLER_MB = 100
# "Flat" cost per node: within this much of the smallest N's (runs on a shared machine vary).
FLAT = 1.10


@dataclass
class Cell:
    """Median, min and max of one (N, row, run) over its repetitions."""

    n: int
    row: str
    run: str
    wall: float
    wall_min: float
    wall_max: float
    cpu: float
    node_cpu_ms: float | None
    connections: float
    connections_max: int
    sessions: float
    sessions_max: int
    ratio: float
    samples: list[float]
    # Peak resident memory of the controller's processes, MB (median); wall per node, ms.
    peak_mb: float = 0.0
    per_node_ms: float = 0.0


def cells(results: Results) -> list[Cell]:
    """Every cell; ``ratio`` is against ``ssh reload`` (first runs: one connection that reloads Docker)
    or ``ssh true`` (no-op runs).

    The TLS row has no Docker reload to do: its first run is held against ``ssh true`` too.
    """
    found = []
    for (n, row, run), samples in sorted(results.samples.items(), key=_order):
        against = (FLOOR_RESTART, NOOP) if row == FAB_TLS or run == NOOP else (FLOOR_SSH_RELOAD, FIRST)
        floor = results.samples.get((n, *against), [])
        found.append(_cell(n, row, run, samples, statistics.median(s.wall for s in floor) if floor else 0.0))
    return found


def _order(item: tuple[tuple[int, str, str], list[Measurement]]) -> tuple[int, int, int]:
    (n, row, run), _ = item
    return n, (FIRST, NOOP).index(run), ROWS.index(row)


def _cell(n: int, row: str, run: str, samples: list[Measurement], floor: float) -> Cell:
    walls = [sample.wall for sample in samples]
    per_host_connections = [count for s in samples for count in s.connections.values()]
    per_host_sessions = [count for s in samples for count in s.sessions.values()]
    median = statistics.median(walls)
    return Cell(
        n,
        row,
        run,
        median,
        min(walls),
        max(walls),
        statistics.median(sample.cpu for sample in samples),
        _per_host_ms(samples, n),
        statistics.mean(per_host_connections) if per_host_connections else 0.0,
        max(per_host_connections, default=0),
        statistics.mean(per_host_sessions) if per_host_sessions else 0.0,
        max(per_host_sessions, default=0),
        median / floor if floor else 0.0,
        walls,
        statistics.median(sample.peak_rss for sample in samples) / 1e6,
        median / n * 1000,
    )


def _per_host_ms(samples: list[Measurement], n: int) -> float | None:
    if any(sample.node_cpu is None for sample in samples):
        return None
    return statistics.median(sample.node_cpu for sample in samples) / n * 1000


@dataclass
class Check:
    """One speed target at the largest N, met or not, with its numbers."""

    target: str
    met: bool
    numbers: str


def checks(table: list[Cell]) -> list[Check]:
    """Issue 23's goals at the largest N (default flags), and the earlier ones that still hold."""
    top = max(cell.n for cell in table)
    low = min((cell.n for cell in table if cell.n > 1), default=top)
    at = {(c.n, c.row, c.run): c for c in table}
    fab = {run: at.get((top, FAB, run)) for run in (FIRST, NOOP)}
    if not all(fab.values()):
        return []
    reload_floor, ssh_true = at[(top, FLOOR_SSH_RELOAD, FIRST)], at[(top, FLOOR_RESTART, NOOP)]
    found = [
        _at_most(f"first run <= {FIRST_OF_RELOAD_FLOOR}x ssh reload (N={top})", fab[FIRST].wall,
                 reload_floor.wall, FIRST_OF_RELOAD_FLOOR),
        _at_most(f"no-op run <= {NOOP_OF_SSH_TRUE}x ssh true (N={top})", fab[NOOP].wall, ssh_true.wall, NOOP_OF_SSH_TRUE),
    ]  # fmt: skip
    tls = {run: at.get((top, FAB_TLS, run)) for run in (FIRST, NOOP)}
    if all(tls.values()):  # issue 21's goals: TLS, a login and a read-only registry
        found += [
            _at_most(f"TLS first run <= ssh true + restart (N={top})", tls[FIRST].wall,
                     at[(top, FLOOR_RESTART, FIRST)].wall),
            _at_most(f"TLS no-op run <= {TLS_NOOP_OF_SSH_TRUE}x ssh true (N={top})", tls[NOOP].wall, ssh_true.wall,
                     TLS_NOOP_OF_SSH_TRUE),
        ]  # fmt: skip
    memory = max(cell.peak_mb for cell in table if cell.row in (FAB, FAB_TLS))
    found.append(Check(f"controller memory <= {CONTROLLER_MB} MB", memory <= CONTROLLER_MB, f"max {memory:.0f} MB"))
    if top > low:
        for run in (FIRST, NOOP):
            found.append(_per_node(at, run, low, top))
    ansible = {run: at.get((top, ANSIBLE, run)) for run in (FIRST, NOOP)}
    for run, factor in ((FIRST, 5), (NOOP, 10)):
        if ansible[run]:
            speedup = ansible[run].wall / fab[run].wall
            found.append(
                Check(
                    f"{run} run >= {factor}x faster than ansible-core (N={top})",
                    speedup >= factor,
                    f"{speedup:.1f}x ({fab[run].wall:.2f} s vs {ansible[run].wall:.2f} s)",
                )
            )
    connections = max(cell.connections_max for cell in table if cell.row == FAB)
    found.append(Check("one SSH connection per host per run", connections == 1, f"max {connections}"))
    sessions = max(cell.sessions_max for cell in table if cell.row == FAB and cell.run == NOOP)
    found.append(Check("<= 2 exec sessions per host on a no-op run", sessions <= 2, f"max {sessions}"))
    return found


def _at_most(target: str, value: float, limit: float, factor: float = 1.0) -> Check:
    return Check(target, value <= factor * limit, f"{value:.2f} s vs {limit:.2f} s ({value / limit:.2f}x)")


def _per_node(at: dict, run: str, low: int, top: int) -> Check:
    small, large = at[(low, FAB, run)].per_node_ms, at[(top, FAB, run)].per_node_ms
    return Check(
        f"{run} run: cost per node flat or falling, N={low} to {top}",
        large <= FLAT * small,
        f"{small:.0f} -> {large:.0f} ms/node (x{large / small:.2f})",
    )


def markdown(table: list[Cell], found: list[Check], meta: dict) -> str:
    lines = [
        "| N | tool | run | wall s: median [min-max] | ms/node | x floor | controller CPU s | controller peak MB "
        + "| node CPU ms/host | SSH conns/host | exec sessions/host |",
        "| ---: | --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for cell in table:
        lines.append(
            f"| {cell.n} | {cell.row} | {cell.run} | {cell.wall:.2f} [{cell.wall_min:.2f}-{cell.wall_max:.2f}] "
            f"| {cell.per_node_ms:.0f} | {cell.ratio:.2f} | {cell.cpu:.2f} | {cell.peak_mb:.0f} | {_ms(cell.node_cpu_ms)} "
            f"| {_count(cell.connections, cell.connections_max)} | {_count(cell.sessions, cell.sessions_max)} |"
        )
    lines += ["", "| speed target | met | numbers |", "| --- | --- | --- |"]
    lines += [f"| {check.target} | {'yes' if check.met else 'NO'} | {check.numbers} |" for check in found]
    lines += [
        "",
        f"{meta['repeat']} runs per cell; tools: "
        + ", ".join(f"{k} {v}" for k, v in meta["versions"].items()),
    ]
    return "\n".join(lines) + "\n"


def _ms(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0f}"


def _count(mean: float, most: int) -> str:
    return f"{mean:.0f}" if mean == most else f"{mean:.1f} (max {most})"


def write_json(path: Path, table: list[Cell], found: list[Check], meta: dict, failures: list[str]) -> None:
    data = {
        "meta": meta,
        "cells": [asdict(cell) for cell in table],
        "targets": [asdict(check) for check in found],
        "failures": failures,
    }
    path.write_text(json.dumps(data, indent=2) + "\n")


COLORS = dict(
    zip(ROWS, ("tab:gray", "tab:cyan", "tab:blue", "tab:green", "tab:olive", "tab:red", "tab:purple"), strict=True)
)


def plot(path: Path, table: list[Cell]) -> None:
    """Wall time against N, one line per tool (one colour each); first runs left, no-op runs right."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    figure, axes = pyplot.subplots(1, 2, figsize=(12, 5), sharey=True)
    for axis, run in zip(axes, (FIRST, NOOP)):
        for row in ROWS:
            # Without a change every floor is the same `ssh true`: drawn once.
            if run == NOOP and row.startswith("floor") and row != FLOOR_RESTART:
                continue
            points = sorted(
                (c.n, c.wall, c.wall_min, c.wall_max) for c in table if c.row == row and c.run == run
            )
            if not points:
                continue
            ns, walls, lows, highs = zip(*points)
            errors = [[w - lo for w, lo in zip(walls, lows)], [hi - w for w, hi in zip(walls, highs)]]
            label = "floor: ssh true" if run == NOOP and row == FLOOR_RESTART else row
            style = "--" if row.startswith("floor") else "-"
            axis.errorbar(
                ns, walls, yerr=errors, label=label, marker="o", linestyle=style, capsize=3, color=COLORS[row]
            )
        axis.set_title(f"{run} run")
        axis.set_xlabel("target nodes (N)")
        axis.set_yscale("log")
        axis.grid(True, which="both", alpha=0.3)
        axis.legend()
    axes[0].set_ylabel("wall time, s (median, min-max; log scale)")
    figure.suptitle(
        "Trusting the registry on N nodes: fab configure-targets vs the SSH floor, ansible-core, pyinfra"
    )
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    pyplot.close(figure)
