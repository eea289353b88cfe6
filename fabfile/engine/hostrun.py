"""A host run: one host's connection, its facts, the run's context, and the rows it reported."""

from __future__ import annotations

import shlex
import time
from collections.abc import Callable, Iterable
from dataclasses import replace
from datetime import UTC, datetime

from fabric import Config, Connection

from ..facts import base as facts_base
from ..facts.base import Section
from ..model.context import StepContext
from ..model.errors import RemoteError
from ..model.facts import HostFacts
from ..model.inventory import Host
from ..model.marks import failure_reason, marks
from ..model.outcome import Outcome
from ..registry.access import Access
from ..transport.channel import CommandTimeout, LineCallback
from ..transport.connection import UPLOAD_TIMEOUT, connect, execute, run_as_root, sudo_hint
from ..transport.safewrite import adopt_script
from ..transport.upload import UploadError, send_file

UPLOAD_PREFIX = "/tmp/kolla-registry."


class HostRun:
    """One host for the length of a task: connection, facts, context, rows."""

    def __init__(self, host: Host, ctx: StepContext, config: Config | None = None) -> None:
        self.host = host
        self.ctx = ctx
        self.config = config
        self.sections: tuple[Section, ...] = ()
        self.connection: Connection = connect(host, config)
        self.facts = HostFacts()
        self.stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        self.outcomes: list[Outcome] = []
        # The login user's folder uploads are written to, and the folder scripts read uploads from ($UPLOADS):
        # root's own, once root took them (the same folder when the login user is root).
        self.inbox = ""
        self.uploads = ""
        # A read-only task whose table is the output: no progress lines, no tables of steps.
        self.quiet = False
        # This run wrote files whose Docker handler may not have run yet (see converge.undo_pending).
        self.left_pending = False
        # Called with each row as it is reported (the progress line).
        self.on_row: Callable[[Outcome], None] = lambda outcome: None

    def with_registry(self, access: Access) -> None:
        """What this run knows of the registry."""
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

    def gather(self, sections: Iterable[Section] | None = None) -> HostFacts:
        """The facts of ``sections`` (default: the run's), in one round trip."""
        wanted = tuple(self.sections if sections is None else sections)
        try:
            output = self.run(facts_base.script(wanted))
        except RemoteError as error:
            raise RemoteError(f"gathering facts: {error}", error.code) from None
        self.facts = facts_base.parse(output, wanted)
        return self.facts

    def outcome(self, step: str, status: str, message: str, started: float) -> Outcome:
        return Outcome(self.host.name, step, status, message, time.monotonic() - started)

    def record(self, outcome: Outcome) -> Outcome:
        """Keep ``outcome`` for the recap, and show its progress line now."""
        self.outcomes.append(outcome)
        self.on_row(outcome)
        return outcome

    def upload(self, local: str, name: str, callback=None) -> str:
        """Put a file from this machine into this run's private folder on the host; its path there.

        A folder goes as an uncompressed tar of its contents. ``cat`` on an exec channel writes it, as the
        login user, into a folder made by ``mktemp -d`` (0700) once per run (``transport.upload``); a login
        user other than root then hands it to root, which moves it into its own private folder and reads it
        only from there (see ``safewrite.adopt_script``). Every wait is bounded. Both folders go when the
        run closes.
        """
        if not self.inbox:
            made = execute(self.connection, f"mktemp -d {UPLOAD_PREFIX}XXXXXXXX", timeout=30)
            if not made.ok or not made.stdout.strip().startswith(UPLOAD_PREFIX):
                raise RemoteError(f"cannot make a private upload folder: {made.stderr.strip() or made.stdout}")
            self.inbox = made.stdout.strip()
        remote = f"{self.inbox}/{name}"
        try:
            send_file(self.connection, local, remote, UPLOAD_TIMEOUT, callback)
        except (TimeoutError, CommandTimeout):
            raise RemoteError(f"upload of {local} stalled: the host answered nothing for {UPLOAD_TIMEOUT} s") from None
        except UploadError as error:
            raise RemoteError(f"upload of {local} failed: {error}") from None
        except OSError as error:
            raise RemoteError(f"upload of {local} failed: {error.strerror or error}") from None
        if self.host.user == "root":
            self.uploads = self.inbox
        else:
            output = self.run(adopt_script(self.inbox, name, self.uploads), timeout=60)
            self.uploads = (marks(output, "uploads") or [""])[-1]
        return f"{self.uploads}/{name}"

    def sibling(self) -> HostRun:
        """Another connection to the same host (the one in use may be what failed)."""
        return HostRun(self.host, self.ctx, self.config)

    def close(self) -> None:
        """Remove the upload folders (root's as root) and close the connection."""
        try:
            if self.connection.is_connected:
                if self.uploads and self.uploads != self.inbox:
                    self.run(f"rm -rf -- {shlex.quote(self.uploads)}", timeout=60)
                if self.inbox:
                    execute(self.connection, f"rm -rf -- {shlex.quote(self.inbox)}", timeout=60)
        finally:
            self.connection.close()
