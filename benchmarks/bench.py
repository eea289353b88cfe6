"""The benchmark's order of work: for each N, each repetition, each tool, on reset nodes."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from . import nodes as lab_nodes
from .measure import Measurement, become_subreaper, measure
from .nodes import Lab, Node, NodeCpu
from .tools import BIN, Action, Ansible, Fab, FabTls, Floor, Pyinfra


class Tool(Protocol):
    """What is timed: a name, and a fresh Action for each run."""

    name: str

    def action(self) -> Action: ...


FIRST, NOOP = "first", "no-op"
# One connection per node that reloads Docker: what a first run must do at the least (issue 23's floor).
FLOOR_SSH_RELOAD = "floor: ssh reload"
FLOOR_RELOAD = "floor: ssh true + reload"
FLOOR_RESTART = "floor: ssh true + restart"
FAB, FAB_TLS, ANSIBLE, PYINFRA = Fab.name, FabTls.name, Ansible.name, Pyinfra.name
ROWS = (FLOOR_SSH_RELOAD, FLOOR_RELOAD, FLOOR_RESTART, FAB, FAB_TLS, ANSIBLE, PYINFRA)


@dataclass
class Results:
    """Every measurement, keyed by (N, row, run), and what went wrong."""

    samples: dict[tuple[int, str, str], list[Measurement]] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)

    def add(self, n: int, row: str, run: str, sample: Measurement) -> None:
        self.samples.setdefault((n, row, run), []).append(sample)


def run(counts: list[int], repeat: int, out: Path, ansible_once_above: int = 0, others: bool = True) -> Results:
    """Every N, ``repeat`` times; ansible-core only once where N > ``ansible_once_above`` (0: every time);
    without ``others``, only the floors and fab (no ansible-core, no pyinfra)."""
    become_subreaper()
    lab = lab_nodes.ensure_lab(max(counts))
    lab_nodes.prepare(lab.first(max(counts)))
    say(f"deploy1: registry {lab.registry} (fab deploy-host)")
    lab_nodes.deploy_registry(lab, BIN / "fab", out / "logs" / "deploy-host.log")
    results = Results()
    for n in counts:
        nodes = lab.first(n)
        work = out / "work" / f"n{n}"
        work.mkdir(parents=True, exist_ok=True)
        tools = (Fab(lab, nodes, work), *((Ansible(lab, nodes, work), Pyinfra(lab, nodes, work)) if others else ()))
        cpu = NodeCpu(nodes)
        for rep in range(1, repeat + 1):
            logs = out / "logs" / f"n{n}" / f"rep{rep}"
            run_floor(lab, nodes, cpu, logs, results)
            for tool in tools:
                if isinstance(tool, Ansible) and rep > 1 and ansible_once_above and n > ansible_once_above:
                    continue  # minutes a run at this size, and far from the others: once is enough
                run_tool(lab, nodes, cpu, tool, logs, results)
        lab_nodes.reset(nodes, lab.probe)
    run_tls(lab, counts, repeat, out, results)
    return results


def run_tls(lab: Lab, counts: list[int], repeat: int, out: Path, results: Results) -> None:
    """The TLS row: deploy1 moves to TLS and a login, each N is timed, then deploy1 goes back."""
    logs = out / "logs"
    first = FabTls(lab, lab.first(max(counts)), out / "work")
    say(f"deploy1: registry {lab.registry} with TLS and a login (fab deploy-host)")
    lab_nodes.deploy_registry(lab, BIN / "fab", logs / "deploy-host-tls.log", first.inventory)
    try:
        for n in counts:
            nodes, work = lab.first(n), out / "work" / f"n{n}"
            tool, cpu = FabTls(lab, nodes, work), NodeCpu(nodes)
            for rep in range(1, repeat + 1):
                run_tool(lab, nodes, cpu, tool, logs / f"n{n}" / f"rep{rep}", results)
            lab_nodes.reset(nodes, lab.probe)
    finally:
        lab_nodes.deploy_registry(lab, BIN / "fab", logs / "deploy-host.log")


def run_floor(lab: Lab, nodes: tuple[Node, ...], cpu: NodeCpu, logs: Path, results: Results) -> None:
    """ssh true, then ssh reload, then (after reset-failed) ssh restart: each phase timed."""
    n = len(nodes)
    floor = Floor(lab, nodes)
    lab_nodes.reset(nodes, lab.probe)
    phases = {}
    for phase in ("true", "reload", "restart"):
        if phase == "restart":
            lab_nodes.allow_restart(nodes)
        phases[phase] = measure(floor.phase(phase), nodes, cpu, logs / f"floor-{phase}.log")
        _check(phases[phase], n, f"floor {phase}", logs, results)
    results.add(n, FLOOR_SSH_RELOAD, FIRST, phases["reload"])
    results.add(n, FLOOR_RELOAD, FIRST, phases["true"] + phases["reload"])
    results.add(n, FLOOR_RESTART, FIRST, phases["true"] + phases["restart"])
    for row in (FLOOR_SSH_RELOAD, FLOOR_RELOAD, FLOOR_RESTART):
        results.add(n, row, NOOP, phases["true"])
    _report(n, "floor", phases["true"], phases["reload"], phases["restart"])


def run_tool(
    lab: Lab, nodes: tuple[Node, ...], cpu: NodeCpu, tool: Tool, logs: Path, results: Results
) -> None:
    """A first run on reset nodes, then a no-op run; both must leave the registry trusted."""
    n, name = len(nodes), tool.name
    lab_nodes.reset(nodes, lab.probe)
    for run_name in (FIRST, NOOP):
        log = logs / f"{name.split()[0]}{'-tls' if isinstance(tool, FabTls) else ''}-{run_name}.log"
        sample = measure(tool.action(), nodes, cpu, log)
        tls = isinstance(tool, FabTls)
        untrusted = lab_nodes.pulled(nodes, lab.probe) if tls else lab_nodes.trusts(nodes, lab.registry)
        if untrusted:
            sample.ok = False
            results.failures.append(
                f"N={n} {name} {run_name}: {', '.join(untrusted)} do not trust it ({log})"
            )
        _check(sample, n, f"{name} {run_name}", log, results)
        results.add(n, name, run_name, sample)
        _report(n, f"{name} {run_name}", sample)


def _check(sample: Measurement, n: int, what: str, log: Path, results: Results) -> None:
    if not sample.ok and not any(what in failure for failure in results.failures):
        results.failures.append(f"N={n} {what} failed (log: {log})")


def _report(n: int, what: str, *samples: Measurement) -> None:
    parts = []
    for sample in samples:
        connections = sum(sample.connections.values()) / max(1, len(sample.connections))
        sessions = sum(sample.sessions.values()) / max(1, len(sample.sessions))
        nodes = f" nodes {sample.node_cpu:.2f}s" if sample.node_cpu is not None else ""
        parts.append(
            f"{sample.wall:.2f}s cpu {sample.cpu:.2f}s{nodes} rss {sample.peak_rss / 1e6:.0f}MB "
            f"ssh {connections:.1f}/{sessions:.1f}"
        )
    say(f"N={n:<3} {what:<28} " + " | ".join(parts))


def say(text: str) -> None:
    print(f"bench: {text}", file=sys.stderr, flush=True)
