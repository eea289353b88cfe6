"""This machine as a task's host: the engine's host run without SSH, for work done where the operator is."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from fabric import Config

from ..model.context import StepContext
from ..model.errors import RemoteError
from ..model.facts import HostFacts
from ..model.inventory import HERE, Host
from ..model.marks import failure_reason
from ..model.outcome import Outcome
from ..transport.local import run_here
from .hostrun import HostRun

__all__ = ["HERE", "LocalRun"]


class _Here:
    """What the engine asks of a connection, for this machine: nothing to open or close."""

    is_connected = True

    def open(self) -> None:
        return None

    def close(self) -> None:
        return None


class LocalRun(HostRun):
    """A host run on this machine: its scripts run here, as the operator, each one bounded."""

    def __init__(self, host: Host, ctx: StepContext, config: Config | None = None) -> None:
        # Not HostRun's: no SSH connection to make.
        self.host, self.ctx, self.config = host, ctx, config
        self.sections = ()
        self.connection = _Here()
        self.facts = HostFacts()
        self.stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        self.outcomes: list[Outcome] = []
        self.inbox = self.uploads = ""
        self.quiet = False
        self.left_pending = False
        self.on_row = lambda outcome: None

    def run(self, script: str, on_line=None, timeout: int = 0) -> str:
        limit = timeout or self.ctx.limits.command_timeout
        started = time.monotonic()
        result = run_here(script, limit, on_line)
        if result.ok:
            return result.stdout
        if result.exited == 124 and time.monotonic() - started >= limit:
            raise RemoteError(f"timed out after {limit} s and was stopped (kolla_registry.command_timeout)", 124)
        raise RemoteError(f"exit {result.exited}: {failure_reason(result.stdout, result.stderr)}", result.exited)

    def upload(self, local: str, name: str, callback=None) -> str:
        raise RemoteError(f"{local}: nothing is uploaded to this machine; it is read where it is")

    def sibling(self) -> LocalRun:
        return LocalRun(self.host, self.ctx, self.config)

    def close(self) -> None:
        return None
