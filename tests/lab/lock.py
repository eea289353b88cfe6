"""One user of the lab at a time: a test session, or a benchmark (they reset and grow its hosts)."""

from __future__ import annotations

import fcntl
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from .config import paths

# Set while this process (and so its children: a test that runs a benchmark) holds the lock.
HELD_ENV = "KOLLA_LAB_LOCK_HELD"


@contextmanager
def lab_lock() -> Iterator[None]:
    """Hold the lab's lock (waiting for another holder, and saying so); re-entrant for child processes."""
    if os.environ.get(HELD_ENV) == "1" or os.geteuid() != 0:
        yield
        return
    root = paths().root
    root.mkdir(parents=True, exist_ok=True)
    path = root / "suite.lock"
    with open(path, "w") as held:
        try:
            fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print(f"waiting for another user of the lab to finish ({path})", file=sys.stderr, flush=True)
            fcntl.flock(held, fcntl.LOCK_EX)
        os.environ[HELD_ENV] = "1"
        try:
            yield
        finally:
            del os.environ[HELD_ENV]
