"""What every task prints: progress lines as rows come, then the recap (or JSON), and its exit status.

The one place a run's result is turned into output and an exit status: non-zero
when any host failed or was unreachable, whatever the task.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

from invoke.exceptions import Exit
from tabulate import tabulate

from ..model.outcome import STATUSES, Outcome

_print_lock = threading.Lock()


def print_line(text: str) -> None:
    """Print whole lines even when many hosts report at once."""
    with _print_lock:
        print(text, flush=True)


def progress_line(outcome: Outcome) -> str:
    """The progress line printed as soon as a step ends."""
    return f"{outcome.host} | {outcome.step} | {outcome.status.upper()} | {outcome.message}"


@dataclass
class Result:
    """A task's run: every row in host order, how it ran, and what --json adds at the top."""

    task: str
    outcomes: list[Outcome]
    check: bool = False
    with_engine: bool = False
    extra: dict = field(default_factory=dict)

    @property
    def failed(self) -> bool:
        return any(outcome.failed for outcome in self.outcomes)


def recap(result: Result) -> str:
    """A table of every outcome, then Ansible-style totals per host."""
    engine = result.with_engine
    headers = ["host", "step", "status"] + (["engine"] if engine else []) + ["seconds", "details"]
    rows = [
        [o.host, o.step, o.status] + ([o.engine] if engine else []) + [f"{o.seconds:.1f}", o.message]
        for o in result.outcomes
    ]
    title = "RECAP (check mode: nothing was changed)" if result.check else "RECAP"
    widths = [None] * (len(headers) - 1) + [70]
    table = tabulate(rows, headers=headers, maxcolwidths=widths, disable_numparse=True)
    return "\n".join([title, table, "", totals(result.outcomes)])


def totals(outcomes: list[Outcome]) -> str:
    """``host : ok=N changed=N failed=N unreachable=N skipped=N`` per host."""
    width = max((len(host) for host in _counts(outcomes)), default=0)
    return "\n".join(
        f"{host:<{width}} : " + " ".join(f"{status}={counts[status]}" for status in STATUSES)
        for host, counts in _counts(outcomes).items()
    )


def as_json(result: Result) -> str:
    """The run as one JSON document: every row (with its data), the totals per host, the task's extras."""
    document = {
        "task": result.task,
        "check": result.check,
        **result.extra,
        "hosts": [{**asdict(outcome), **outcome.data} for outcome in result.outcomes],
        "totals": {host: dict(counts) for host, counts in _counts(result.outcomes).items()},
        "failed": result.failed,
    }
    for row in document["hosts"]:
        row.pop("data", None)
    return json.dumps(document, indent=2)


def finish(result: Result, json_output: bool = False, render: Callable[[Result], str] | None = None) -> None:
    """Print the result (its own table, the recap, or JSON); exit status 1 when any host failed or was unreachable."""
    if json_output:
        print_line(as_json(result))
    else:
        print_line(render(result) if render else "\n" + recap(result))
    if result.failed:
        raise Exit(code=1)


def _counts(outcomes: list[Outcome]) -> dict[str, Counter]:
    per_host: dict[str, Counter] = {}
    for outcome in outcomes:
        per_host.setdefault(outcome.host, Counter({status: 0 for status in STATUSES}))[outcome.status] += 1
    return per_host
