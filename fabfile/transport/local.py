"""Scripts on this machine: what a task runs where the operator is (export-images writes a bundle here).

The script goes to ``sh`` on its stdin, never as an argument (it may carry an
upstream's login), and runs as the operator, not root. Every run is bounded:
past its time the whole process group is stopped.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
from dataclasses import dataclass

from .channel import LineCallback


@dataclass(frozen=True)
class LocalResult:
    """How a script ended here: its exit status (124 when stopped for time) and its output."""

    exited: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.exited == 0


def run_here(script: str, timeout: int, on_line: LineCallback = None) -> LocalResult:
    """Run ``script`` under ``sh`` here, reading it from stdin; stopped after ``timeout`` s."""
    process = subprocess.Popen(
        ["sh", "-s"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    stopped = threading.Event()

    def stop() -> None:
        stopped.set()
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    timer = threading.Timer(timeout, stop)
    timer.start()
    errors: list[str] = []
    reader = threading.Thread(target=lambda: errors.append(process.stderr.read()), daemon=True)
    reader.start()
    try:
        try:
            process.stdin.write(script)
            process.stdin.close()
        except BrokenPipeError:
            pass
        lines = []
        for line in process.stdout:
            lines.append(line)
            if on_line is not None:
                on_line(line.rstrip("\n"))
        process.wait()
        reader.join(10)
    finally:
        timer.cancel()
    code = 124 if stopped.is_set() else process.returncode
    return LocalResult(code, "".join(lines), "".join(errors))
