"""The 100- and 1000-node arithmetic for configure-targets, recomputed from what the benchmark measured.

Each quantity is fitted as fixed + per-node x N (least squares over the measured N), then
read at 100 and 1000. In the lab every node shares this machine's CPUs, so the lab's own
slope is mostly the nodes' CPU; on a cloud each node works on its own, and a run takes
the longest of: the controller's CPU (one core: Python's GIL), and the waves of
``parallel`` hosts each as long as one node's run.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

from .bench import FAB, FIRST, NOOP

SIZES = (100, 1000)


@dataclass(frozen=True)
class Fit:
    """fixed + per_node x N."""

    fixed: float
    per_node: float

    def at(self, n: float) -> float:
        return self.fixed + self.per_node * n


def fit(points: list[tuple[float, float]]) -> Fit:
    """The least-squares line through ``points`` (N, value); one point: through the origin."""
    if len(points) == 1:
        n, value = points[0]
        return Fit(0.0, value / n)
    mean_n = sum(n for n, _ in points) / len(points)
    mean_v = sum(v for _, v in points) / len(points)
    spread = sum((n - mean_n) ** 2 for n, _ in points)
    slope = sum((n - mean_n) * (v - mean_v) for n, v in points) / spread
    return Fit(mean_v - slope * mean_n, slope)


def markdown(table: list, parallel: int, cpus: int | None = None) -> str:
    """The projection as Markdown: the fitted slopes, then each size with its first wall named."""
    fab = {(cell.n, cell.run): cell for cell in table if cell.row == FAB}
    sizes = sorted({n for n, _ in fab if n > 1})
    if len(sizes) < 2:
        return "(the projection needs fab rows at two N > 1)\n"
    cpus = cpus or os.cpu_count() or 1
    lines = [
        f"Fitted over N = {', '.join(map(str, sizes))} (fab configure-targets, default flags: up to {parallel} hosts at once).",
        "",
        "| quantity | fixed | per node | at 100 | at 1000 |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    fits = {}
    for run in (FIRST, NOOP):
        fits[f"wall {run}"] = fit([(n, fab[(n, run)].wall) for n in sizes])
        fits[f"controller CPU {run}"] = fit([(n, fab[(n, run)].cpu) for n in sizes])
    memory = fit([(min(n, parallel), max(fab[(n, run)].peak_mb for run in (FIRST, NOOP))) for n in sizes])
    for name, line in fits.items():
        unit = "s"
        lines.append(f"| {name} (this lab), {unit} | {line.fixed:.2f} | {line.per_node * 1000:.1f} ms "
                     f"| {line.at(100):.1f} | {line.at(1000):.1f} |")  # fmt: skip
    lines.append(f"| controller peak memory, MB (per host at once) | {memory.fixed:.0f} | {memory.per_node:.2f} "
                 f"| {memory.at(min(100, parallel)):.0f} | {memory.at(min(1000, parallel)):.0f} |")  # fmt: skip
    one = fab.get((1, FIRST)), fab.get((1, NOOP))
    lines += ["", *_walls(fits, one, parallel, cpus, fab, sizes)]
    return "\n".join(lines) + "\n"


def _walls(fits: dict[str, Fit], one: tuple, parallel: int, cpus: int, fab: dict, sizes: list[int]) -> list[str]:
    """Per size and run: the lab's wall, and on a cloud the controller's CPU against the waves."""
    lines = ["| N | run | this lab | cloud: controller CPU (1 core) | cloud: waves x one node | first wall |",
             "| ---: | --- | ---: | ---: | ---: | --- |"]  # fmt: skip
    for n in SIZES:
        for index, run in enumerate((FIRST, NOOP)):
            single = one[index].wall if one[index] else fab[(sizes[0], run)].wall
            waves = math.ceil(n / parallel) * single
            controller = fits[f"controller CPU {run}"].at(n)
            lab = fits[f"wall {run}"].at(n)
            node_cpu = fab[(sizes[-1], run)].node_cpu_ms
            wall = _first_wall(controller, waves, lab, node_cpu, n, cpus)
            lines.append(f"| {n} | {run} | {lab:.1f} s | {controller:.1f} s | {waves:.1f} s | {wall} |")
    return lines


def _first_wall(controller: float, waves: float, lab: float, node_cpu_ms: float | None, n: int, cpus: int) -> str:
    """Which limit a run meets first on a cloud, and what the lab's CPUs alone would take."""
    cloud = "controller CPU" if controller >= waves else "waves (handshake + one node's run)"
    if node_cpu_ms is None:
        return cloud
    nodes = n * node_cpu_ms / 1000
    return f"{cloud}; lab: ({nodes:.1f} s nodes + {controller:.1f} s controller) / {cpus} CPUs = {(nodes + controller) / cpus:.1f} s"
