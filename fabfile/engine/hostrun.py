"""A host run: one host's connection, its facts, the run's context, and what happened there."""

from __future__ import annotations

import shlex
import time
from collections.abc import Iterable
from dataclasses import replace
from datetime import UTC, datetime

from fabric import Config, Connection

from ..inventory import Host
from ..remote import facts as host_facts
from ..remote.apply import CONFLICT_EXIT
from ..remote.connection import CommandTimeout, LineCallback, connect, execute, run_as_root, sudo_hint
from ..remote.marks import failure_reason
from .context import StepContext
from .plan import StepPlan
from .result import Outcome, print_line, progress_line


class RemoteError(Exception):
    """A script failed on a host; the message says which and why."""

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code

    @property
    def conflict(self) -> bool:
        """A file changed under us since the facts were gathered: plan again."""
        return self.code == CONFLICT_EXIT


class HostRun:
    """One host for the length of a task: connection, facts, context, outcomes."""

    def __init__(
        self,
        host: Host,
        ctx: StepContext,
        config: Config | None = None,
        sections: Iterable[host_facts.Section] = (),
    ) -> None:
        self.host = host
        self.ctx = ctx
        self.config = config
        self.sections = tuple(sections)
        self.connection: Connection = connect(host, config)
        self.facts = host_facts.HostFacts()
        self.stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        self.outcomes: list[Outcome] = []
        self.quiet = False
        self.uploads = ""
        # This run wrote files whose Docker handler may not have run yet (see converge.undo_pending).
        self.left_pending = False

    @property
    def check(self) -> bool:
        return self.ctx.modes.check

    def with_registry(self, access) -> None:
        """What this run knows of the registry (an ``address.Access``)."""
        self.ctx = replace(self.ctx, registry_address=access.address, ca=access.ca, password=access.password)

    def run(self, script: str, on_line: LineCallback = None, timeout: int = 0) -> str:
        """Run ``script`` as root; raise ``RemoteError`` with its last words. ``on_line`` sees each
        output line as it comes; ``timeout`` replaces kolla_registry.command_timeout."""
        limit = timeout or self.ctx.limits.command_timeout
        try:
            result = run_as_root(self.connection, self.host, script, limit, on_line)
        except CommandTimeout as error:
            raise RemoteError(f"timed out: {error} (kolla_registry.command_timeout)") from None
        if result.ok:
            return result.stdout
        if result.exited in (124, 137):
            raise RemoteError(f"timed out after {limit} s and was stopped (kolla_registry.command_timeout)", 124)
        reason = sudo_hint(result) or failure_reason(result.stdout, result.stderr)
        raise RemoteError(f"exit {result.exited}: {reason}", result.exited)

    def gather(self, sections: Iterable[host_facts.Section] | None = None) -> host_facts.HostFacts:
        """The facts of ``sections`` (default: the run's), in one round trip."""
        wanted = tuple(self.sections if sections is None else sections)
        try:
            output = self.run(host_facts.script(wanted))
        except RemoteError as error:
            raise RemoteError(f"gathering facts: {error}", error.code) from None
        self.facts = host_facts.parse(output, wanted)
        return self.facts

    def outcome(self, step: str, status: str, message: str, started: float) -> Outcome:
        return Outcome(self.host.name, step, status, message, time.monotonic() - started, self.facts.engine)

    def report(self, outcome: Outcome) -> Outcome:
        """Keep ``outcome`` for the recap and print its progress line now."""
        self.outcomes.append(outcome)
        if not self.quiet:
            print_line(progress_line(outcome))
        return outcome

    def show_diff(self, plan: StepPlan) -> None:
        if self.ctx.modes.diff and plan.files:
            print_line("\n".join(f"--- {self.host.name} ---\n{change.diff()}" for change in plan.files))

    def upload(self, local: str, name: str, callback=None) -> str:
        """Put a file from this machine into this run's private folder on the host; its path there.

        The folder is made by ``mktemp -d`` (mode 0700, as the login user, so that
        SFTP can write it) once per run, and removed when the run closes.
        """
        if not self.uploads:
            made = execute(self.connection, "mktemp -d /tmp/kolla-registry.XXXXXXXX", timeout=30)
            if not made.ok or not made.stdout.strip().startswith("/tmp/kolla-registry."):
                raise RemoteError(f"cannot make a private upload folder: {made.stderr.strip() or made.stdout}")
            self.uploads = made.stdout.strip()
        remote = f"{self.uploads}/{name}"
        try:
            self.connection.sftp().put(local, remote, callback=callback)
        except OSError as error:
            raise RemoteError(f"upload of {local} failed: {error.strerror or error}") from None
        return remote

    def sibling(self) -> HostRun:
        """Another connection to the same host, for work done in parallel there."""
        return HostRun(self.host, self.ctx, self.config, self.sections)

    def close(self) -> None:
        if self.uploads and self.connection.is_connected:
            execute(self.connection, f"rm -rf {shlex.quote(self.uploads)}", timeout=60)
        self.connection.close()
