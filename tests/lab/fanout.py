"""Work on many lab hosts at once: a bounded pool, every host finished, one error naming those that failed.

A 100-node lab made one host at a time took 11 minutes to come up and over a minute
to check again; the hosts are independent, so each step runs on several at once.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import TypeVar

from .errors import LabError, say

PARALLEL_ENV = "KOLLA_LAB_PARALLEL"
# Enough to keep two CPUs busy with boots and docker execs, few enough not to swamp the lab's dockerd.
DEFAULT_PARALLEL = 12

T = TypeVar("T")


@contextmanager
def timed(phase: str) -> Iterator[None]:
    """Say how long a phase took (a 100-node lab's up is minutes: where they go is worth knowing)."""
    began = time.monotonic()
    yield
    say(f"{phase}: {time.monotonic() - began:.0f} s")


def width() -> int:
    """How many hosts at once: ``$KOLLA_LAB_PARALLEL``, else 12; at least 1."""
    text = os.environ.get(PARALLEL_ENV, "").strip()
    try:
        return max(1, int(text)) if text else DEFAULT_PARALLEL
    except ValueError:
        raise LabError(f"{PARALLEL_ENV}={text!r} is not a number of hosts") from None


def each(work: Callable[[str], T], names: Iterable[str], what: str) -> dict[str, T]:
    """``work(name)`` for every name, several at once; the results by name, in the names' order.

    Every host is worked on even when another fails; then one LabError names each
    host that failed with its own reason (the first three in full).
    """
    names = list(names)
    if not names:
        return {}
    results: dict[str, T] = {}
    failures: dict[str, BaseException] = {}

    def one(name: str) -> None:
        try:
            results[name] = work(name)
        except Exception as error:  # noqa: BLE001 - one host's failure must not stop the others
            failures[name] = error

    with ThreadPoolExecutor(max_workers=min(width(), len(names))) as pool:
        list(pool.map(one, names))
    if failures:
        failed = [name for name in names if name in failures]
        reasons = "; ".join(f"{name}: {_one_line(failures[name])}" for name in failed[:3])
        more = f" (and {len(failed) - 3} more: {', '.join(failed[3:])})" if len(failed) > 3 else ""
        raise LabError(f"{what} failed on {len(failed)} of {len(names)} hosts: {reasons}{more}")
    return {name: results[name] for name in names}


def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split())
    return text or type(error).__name__


def shortened(names: list[str]) -> str:
    """``deploy1, node1..node3, node5``: a long list of hosts with runs of consecutive nodes shortened."""
    parts: list[str] = []
    run: list[tuple[str, int]] = []
    for name in names:
        number = _node_number(name)
        if run and number and number == run[-1][1] + 1:
            run.append((name, number))
            continue
        parts += _run_text(run)
        run = [(name, number)] if number else []
        if not number:
            parts.append(name)
    return ", ".join(parts + _run_text(run))


def _run_text(run: list[tuple[str, int]]) -> list[str]:
    if not run:
        return []
    return [run[0][0] if len(run) == 1 else f"{run[0][0]}..{run[-1][0]}"]


def _node_number(name: str) -> int:
    """N for nodeN, else 0 (deploy1, store1, the replicas: never part of a run)."""
    suffix = name.removeprefix("node")
    return int(suffix) if name.startswith("node") and suffix.isdigit() else 0
