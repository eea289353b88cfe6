"""What a long program says as it goes: marks on its output, bytes sent so far. Runs where the program runs.

Standard library only, no f-strings (see registry_client.py). The copy to the
local registry and the export of an OCI layout both use it; the tool reads the
marks as they come (``images.sync_report.Watch``).
"""

# ruff: noqa: UP032 - str.format on purpose: f-strings need Python 3.6 on the host

import sys
import threading
import time

MARK = "::kolla-registry::"
PROGRESS_EVERY = 2.0  # seconds between two progress marks


class Progress:
    """Bytes sent so far, shown as ``MARK progress DONE TOTAL SECONDS`` at most every PROGRESS_EVERY s."""

    def __init__(self, out=None) -> None:
        self.out = out or sys.stdout
        self.lock = threading.Lock()
        self.total = self.done = 0
        self.started = self.shown = time.monotonic()

    def add(self, count: int) -> None:
        with self.lock:
            self.done += count
            if time.monotonic() - self.shown >= PROGRESS_EVERY:
                self._progress()

    def say(self, text: str) -> None:
        with self.lock:
            self.out.write("{} {}\n".format(MARK, text))
            self.out.flush()

    def _progress(self) -> None:
        self.shown = time.monotonic()
        self.out.write("{} progress {} {} {:.1f}\n".format(MARK, self.done, self.total, self.shown - self.started))
        self.out.flush()

    def finish(self) -> None:
        with self.lock:
            self._progress()

    def waiting(self, seconds: float, host: str, status: int, asked) -> None:
        """A 429 being waited out (a client's ``on_wait``), as ``wait SECONDS HOST STATUS asked|backoff``."""
        self.say("wait {:.1f} {} {} {}".format(seconds, host, status, "backoff" if asked is None else "asked"))
