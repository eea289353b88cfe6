"""Running an action on many hosts: a bounded number at once, each host isolated, one result.

Whatever happens on one host (unreachable, a failed script, a bug, even in
closing its connection) becomes that host's row; it never stops the others.
This is the only place that turns an exception into a row.
"""

from __future__ import annotations

import os
import resource
import time
import traceback
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

from fabric import Config

from ..model.context import StepContext
from ..model.errors import AddressUnknown, RemoteError
from ..model.inventory import Host
from ..model.outcome import FAILED, OK, UNREACHABLE, Outcome
from ..registry.access import SECTIONS as ACCESS_SECTIONS
from ..transport.connection import unreachable_reason
from .access import RegistryAccess
from .action import Action
from .converge import checked, run_steps, undo_pending
from .hostrun import HostRun
from .localrun import LocalRun
from .report import Result, print_line, progress_line

DEBUG_ENV = "KOLLA_REGISTRY_DEBUG"
# Without --parallel or kolla_registry.parallel: every host at once, up to this many. A fixed 10 left a
# 100-node cloud waiting in ten waves; past about 100 the controller's one core (Python's GIL, paramiko's
# packets and key exchanges) is the limit, so more threads only add memory (benchmarks/README.md).
PARALLEL_CAP = 100
# Each host in flight holds a socket, and a few more files for a moment (known_hosts, an upload); some are
# kept for everything else. A low open-files limit lowers the cap.
FILES_PER_HOST = 4
FILES_KEPT = 64


def default_parallel() -> int:
    """How many hosts at once when nothing says: PARALLEL_CAP, or fewer where the open-files limit is low."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return PARALLEL_CAP
    return max(1, min(PARALLEL_CAP, (soft - FILES_KEPT) // FILES_PER_HOST))


class Runner:
    """One action over hosts: connect, learn the registry, gather, converge, check, report."""

    def __init__(
        self, action: Action, ctx: StepContext, access: RegistryAccess, config: Config | None = None, quiet: bool = False
    ) -> None:
        self.action = action
        # No progress lines, tables or diffs: the action's table or --json is the only output.
        self.quiet = quiet or action.quiet
        self.ctx = ctx
        self.access = access
        self.config = config
        self.run_class = LocalRun if action.local else HostRun

    def run(self, hosts: Iterable[Host], parallel: int) -> Result:
        """Every host, ``parallel`` at once; every row, in host order."""
        hosts = list(hosts)
        with ThreadPoolExecutor(max_workers=max(1, min(parallel, len(hosts) or 1))) as pool:
            outcomes = [outcome for rows in pool.map(self.on, hosts) for outcome in rows]
        action = self.action
        return Result(action.name, outcomes, self.ctx.modes.check, action.with_engine)

    def on(self, host: Host) -> list[Outcome]:
        """One host from connection to close; every failure becomes its row."""
        started = time.monotonic()
        try:
            ctx = self.action.context(replace(self.ctx, host_name=host.name), host)
            run = self.run_class(host, ctx, self.config)
        except Exception as error:  # noqa: BLE001 - e.g. an unreadable known_hosts: this host fails
            return [self._shown(self._row(host, "connect", error, started), None)]
        run.quiet = self.quiet
        run.on_row = lambda outcome: self._shown(outcome, run)
        phase = "connect"
        try:
            if not self.access.from_facts(host):
                self.access.head_start()
            run.connection.open()
            phase = "gather-facts"
            self._start(run)
            phase = self.action.step or "work"
            self._work(run, started)
        except Exception as error:  # noqa: BLE001 - one host's surprise must not stop the others
            row = self._row(host, phase, error, started)
            row.message += undo_pending(run)
            run.record(row)
        finally:
            self._close(run, started)
        engine = self.action.engine(run.facts)
        for outcome in run.outcomes:
            outcome.engine = outcome.engine or engine
        return run.outcomes

    def _start(self, run: HostRun) -> None:
        """Learn the registry (from this host's own facts when it is the deployment host), then gather."""
        action = self.action
        if action.local:
            run.sections = tuple(action.sections(run.ctx))
            run.gather()
            return
        if self.access.from_facts(run.host):
            run.sections = (*action.sections(run.ctx), *ACCESS_SECTIONS)
            run.gather()
            run.with_registry(self.access.seen_from(run.host, self.access.learnt(run.facts)))
            wanted = (*action.sections(run.ctx), *ACCESS_SECTIONS)
            if [section.shell for section in wanted] != [section.shell for section in run.sections]:
                # Some facts depend on the address just learnt (a secure registry's CA path).
                run.sections = wanted
                run.gather()
            return
        access = self.access.lookup() if action.needs_registry else self.access.known_or_empty()
        run.with_registry(self.access.seen_from(run.host, access))
        run.sections = tuple(action.sections(run.ctx))
        run.gather()

    def _work(self, run: HostRun, started: float) -> None:
        action = self.action
        steps = action.steps(run.ctx)
        if steps and not run_steps(run, steps):
            return
        check = action.check(run.facts, run.ctx)
        if check is not None:
            run.record(checked(run, check, time.monotonic()))
        elif not steps:
            # A read-only action: one row, timed from the connection on, with what it read.
            row = run.outcome(action.step or action.name, OK, "", started)
            row.data = action.data(run.facts, run.ctx)
            run.record(row)

    def _close(self, run: HostRun, started: float) -> None:
        try:
            run.close()
        except Exception as error:  # noqa: BLE001 - a failed close must not lose this host's rows
            run.record(self._row(run.host, "close", error, started))

    def _shown(self, outcome: Outcome, run: HostRun | None) -> Outcome:
        """A row as it is recorded: the action's explanation added, its progress line printed."""
        if run is not None:
            outcome.message += self.action.explain(outcome, run.ctx)
        if not self.quiet:
            print_line(progress_line(outcome))
        return outcome

    def _row(self, host: Host, phase: str, error: Exception, started: float) -> Outcome:
        seconds = time.monotonic() - started
        step = self.action.step or phase
        reason = unreachable_reason(error, host) if phase == "connect" else None
        if reason:
            return Outcome(host.name, step, UNREACHABLE, reason, seconds)
        if isinstance(error, (RemoteError, AddressUnknown)):
            return Outcome(host.name, step, FAILED, str(error), seconds)
        if debugging():
            print_line(traceback.format_exc())
        first_line = next(iter(str(error).strip().splitlines()), "")
        return Outcome(host.name, step, FAILED, f"{type(error).__name__}: {first_line}".rstrip(": "), seconds)


def debugging() -> bool:
    """Whether to print tracebacks of unexpected errors (``KOLLA_REGISTRY_DEBUG=1``)."""
    return os.environ.get(DEBUG_ENV, "") not in ("", "0")
