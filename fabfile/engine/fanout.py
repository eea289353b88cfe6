"""Fan-out: one host task over many hosts, a bounded number at once, each host isolated.

Whatever happens on one host (unreachable, a failed script, a bug) becomes
that host's row; it never stops the others. This is the only place that
turns an exception into a row.
"""

from __future__ import annotations

import os
import time
import traceback
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor

from fabric import Config
from invoke.exceptions import Exit

from ..inventory import Host
from ..remote import facts as host_facts
from ..remote.connection import unreachable_reason
from .address import SECTIONS as ACCESS_SECTIONS
from .address import AddressUnknown, RegistryAddress
from .context import StepContext
from .converge import undo_pending
from .hostrun import HostRun, RemoteError
from .result import FAILED, UNREACHABLE, Outcome, print_line, recap

Work = Callable[[HostRun], None]
DEBUG_ENV = "KOLLA_REGISTRY_DEBUG"


class HostTask:
    """What a task does on each host: the facts it reads, the work, and where the address comes from."""

    def __init__(
        self,
        ctx: StepContext,
        work: Work,
        sections: Callable[[StepContext], Iterable[host_facts.Section]],
        address: RegistryAddress,
        config: Config | None = None,
        step: str = "",
        address_required: bool = True,
    ) -> None:
        self.ctx = ctx
        self.work = work
        self.sections = sections
        self.address = address
        self.config = config
        self.step = step
        self.address_required = address_required
        self.quiet = False
        self.run_class = HostRun

    def on(self, host: Host) -> list[Outcome]:
        """Connect, learn the address, gather, work; every failure becomes this host's row."""
        started = time.monotonic()
        try:
            run = self.run_class(host, self.ctx, self.config)
            run.quiet = self.quiet
        except Exception as error:  # noqa: BLE001 - e.g. an unreadable known_hosts: this host fails
            return [self._row(host, "connect", error, started)]
        phase = "connect"
        try:
            run.connection.open()
            phase = "gather-facts"
            self._start(run)
            phase = self.step or "work"
            self.work(run)
        except Exception as error:  # noqa: BLE001 - one host's surprise must not stop the others
            row = self._row(host, phase, error, started)
            row.message += undo_pending(run)
            run.report(row)
        finally:
            run.close()
        return run.outcomes

    def _start(self, run: HostRun) -> None:
        if self.address.from_facts(run.host):
            run.sections = (*self.sections(run.ctx), *ACCESS_SECTIONS)
            run.gather()
            run.with_registry(self.address.seen_from(run.host, self.address.learnt(run.facts)))
            wanted = (*self.sections(run.ctx), *ACCESS_SECTIONS)
            if [section.shell for section in wanted] != [section.shell for section in run.sections]:
                # Some facts depend on the address just learnt (a secure registry's CA path).
                run.sections = wanted
                run.gather()
            return
        access = self.address.lookup() if self.address_required else self.address.known_or_empty()
        run.with_registry(self.address.seen_from(run.host, access))
        run.sections = tuple(self.sections(run.ctx))
        run.gather()

    def _row(self, host: Host, phase: str, error: Exception, started: float) -> Outcome:
        seconds = time.monotonic() - started
        step = self.step or phase
        reason = unreachable_reason(error, host) if phase == "connect" else None
        if reason:
            return Outcome(host.name, step, UNREACHABLE, reason, seconds)
        if isinstance(error, (RemoteError, AddressUnknown)):
            return Outcome(host.name, step, FAILED, str(error), seconds)
        if debugging():
            print_line(traceback.format_exc())
        first_line = next(iter(str(error).strip().splitlines()), "")
        return Outcome(host.name, step, FAILED, f"{type(error).__name__}: {first_line}".rstrip(": "), seconds)


def fan_out(hosts: Iterable[Host], task: HostTask, parallel: int) -> list[Outcome]:
    """``task`` on every host, ``parallel`` at once; every outcome, in host order."""
    hosts = list(hosts)
    with ThreadPoolExecutor(max_workers=max(1, min(parallel, len(hosts) or 1))) as pool:
        return [outcome for outcomes in pool.map(task.on, hosts) for outcome in outcomes]


def finish(outcomes: list[Outcome], check: bool = False, with_engine: bool = False) -> None:
    """The recap; exit status 1 when any host failed or was unreachable."""
    print_line("\n" + recap(outcomes, check, with_engine))
    if any(outcome.failed for outcome in outcomes):
        raise Exit(code=1)


def debugging() -> bool:
    """Whether to print tracebacks of unexpected errors (``KOLLA_REGISTRY_DEBUG=1``)."""
    return os.environ.get(DEBUG_ENV, "") not in ("", "0")
