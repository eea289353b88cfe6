"""One timed run: wall time, the controller's CPU seconds, and what each node's sshd saw."""

from __future__ import annotations

import ctypes
import os
import resource
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from .nodes import Node, NodeCpu, sshd_counts
from .tools import PROJECT, Action

PR_SET_CHILD_SUBREAPER = 36
REAP_SECONDS = 5.0


@dataclass
class Measurement:
    """One run of one tool on N nodes."""

    wall: float
    cpu: float
    node_cpu: float | None
    connections: dict[str, int]
    sessions: dict[str, int]
    ok: bool
    # Peak resident memory, bytes: each started command's own peak (its largest process), added up.
    peak_rss: int = 0

    def __add__(self, other: Measurement) -> Measurement:
        """Two phases of the floor as one run."""
        return Measurement(
            self.wall + other.wall,
            self.cpu + other.cpu,
            None if self.node_cpu is None or other.node_cpu is None else self.node_cpu + other.node_cpu,
            {name: count + other.connections.get(name, 0) for name, count in self.connections.items()},
            {name: count + other.sessions.get(name, 0) for name, count in self.sessions.items()},
            self.ok and other.ok,
            max(self.peak_rss, other.peak_rss),
        )


def become_subreaper() -> None:
    """Adopt orphaned descendants (ansible's ControlPersist masters) so their CPU is counted."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER)")


def measure(action: Action, nodes: tuple[Node, ...], node_cpu: NodeCpu, log: Path) -> Measurement:
    """Start every command of ``action`` at once, wait for all; then count."""
    log.parent.mkdir(parents=True, exist_ok=True)
    since = time.time()
    present = _children()
    before = _children_cpu()
    nodes_before = node_cpu.seconds()
    start = time.perf_counter()
    with log.open("w") as out:
        processes = [
            subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=action.env,
                cwd=PROJECT,
            )
            for command in action.commands
        ]
        ended = [_wait(process) for process in processes]
    wall = time.perf_counter() - start
    codes = [code for code, _ in ended]
    if action.cleanup:
        action.cleanup()
    _reap_orphans(present)
    cpu = _children_cpu() - before
    nodes_after = node_cpu.seconds()
    counts = sshd_counts(nodes, since)
    return Measurement(
        wall,
        cpu,
        None if nodes_before is None or nodes_after is None else nodes_after - nodes_before,
        {name: count.connections for name, count in counts.items()},
        {name: count.sessions for name, count in counts.items()},
        ok=all(code == 0 for code in codes),
        peak_rss=sum(peak for _, peak in ended),
    )


def _wait(process: subprocess.Popen) -> tuple[int, int]:
    """Its exit status, and its peak resident memory in bytes (wait4's ru_maxrss: the largest of it
    and the descendants it waited for; for fab, its one process)."""
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    return process.returncode, usage.ru_maxrss * 1024


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _children() -> set[int]:
    """Our child processes now (adopted orphans included)."""
    me = str(os.getpid())
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if fields[1] == me:
            found.add(int(stat.parent.name))
    return found


def _reap_orphans(present: set[int]) -> None:
    """Wait for the orphans adopted during a run to exit, so that getrusage includes them."""
    deadline = time.monotonic() + REAP_SECONDS
    while time.monotonic() < deadline:
        adopted = _children() - present
        if not adopted:
            return
        for pid in adopted:
            try:
                os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                pass
        time.sleep(0.05)
