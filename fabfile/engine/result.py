"""Outcomes per host and step, and the recap table printed at the end."""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass

from tabulate import tabulate

OK, CHANGED, FAILED, UNREACHABLE, SKIPPED = "ok", "changed", "failed", "unreachable", "skipped"
STATUSES = (OK, CHANGED, FAILED, UNREACHABLE, SKIPPED)
_print_lock = threading.Lock()


def print_line(text: str) -> None:
    """Print whole lines even when many hosts report at once."""
    with _print_lock:
        print(text, flush=True)


@dataclass
class Outcome:
    """How one step (or one whole node) went on one host."""

    host: str
    step: str
    status: str
    message: str = ""
    seconds: float = 0.0
    # The node's engines and versions, e.g. "docker 26.1.5" or "docker 20.10.24+podman 4.3.1".
    engine: str = ""

    @property
    def failed(self) -> bool:
        return self.status in (FAILED, UNREACHABLE)


def progress_line(outcome: Outcome) -> str:
    """The progress line printed as soon as a step ends."""
    return f"{outcome.host} | {outcome.step} | {outcome.status.upper()} | {outcome.message}"


def recap(outcomes: list[Outcome], check: bool = False, with_engine: bool = False) -> str:
    """A table of every outcome, then Ansible-style totals per host."""
    headers = ["host", "step", "status"] + (["engine"] if with_engine else []) + ["seconds", "details"]
    rows = [
        [o.host, o.step, o.status] + ([o.engine] if with_engine else []) + [f"{o.seconds:.1f}", o.message]
        for o in outcomes
    ]
    title = "RECAP (check mode: nothing was changed)" if check else "RECAP"
    return "\n".join(
        [
            title,
            tabulate(
                rows, headers=headers, maxcolwidths=[None] * (len(headers) - 1) + [70], disable_numparse=True
            ),
            "",
            totals(outcomes),
        ]
    )


def totals(outcomes: list[Outcome]) -> str:
    """``host : ok=N changed=N failed=N unreachable=N skipped=N`` per host."""
    per_host: dict[str, Counter] = {}
    for outcome in outcomes:
        per_host.setdefault(outcome.host, Counter())[outcome.status] += 1
    width = max((len(host) for host in per_host), default=0)
    return "\n".join(
        f"{host:<{width}} : " + " ".join(f"{status}={counts[status]}" for status in STATUSES)
        for host, counts in per_host.items()
    )
