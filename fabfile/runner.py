"""The runner: gathers facts, plans, applies only what differs, and reports."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

from fabric import Connection

from . import facts as host_facts
from .change import CONFLICT_EXIT, StepPlan, apply_script
from .connection import connect, run_as_root, sudo_hint, unreachable_reason
from .inventory import Host
from .report import CHANGED, FAILED, OK, SKIPPED, Outcome
from .steps import StepContext

Planner = Callable[[host_facts.HostFacts, StepContext], StepPlan]
MAX_ROUNDS = 3
print_lock = threading.Lock()


def say(text: str) -> None:
    """Print whole lines even when many hosts report at once."""
    with print_lock:
        print(text, flush=True)


class StepFailed(Exception):
    """A remote command failed; the message says which and why."""

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code

    @property
    def conflict(self) -> bool:
        return self.code == CONFLICT_EXIT


class HostRun:
    """One host's connection, its latest facts, and the run's modes."""

    def __init__(self, host: Host, ctx: StepContext, check: bool, diff: bool, config=None) -> None:
        self.host = host
        self.ctx = ctx
        self.check = check
        self.diff = diff
        self.connection: Connection = connect(host, config)
        self.facts = host_facts.HostFacts()
        self.stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        self.execs = 0

    def run(self, script: str) -> str:
        """Run ``script`` as root; raise ``StepFailed`` with its last words."""
        self.execs += 1
        result = run_as_root(self.connection, self.host, script)
        if result.ok:
            return result.stdout
        reason = sudo_hint(result) or last_words(result.stdout, result.stderr)
        raise StepFailed(f"exit {result.exited}: {reason}", result.exited)

    def gather(self) -> host_facts.HostFacts:
        settings = self.ctx.inventory.registry
        self.facts = host_facts.parse(self.run(host_facts.script(settings.name, settings.image)))
        return self.facts

    def step(self, planner: Planner, ctx: StepContext | None = None) -> tuple[Outcome, StepPlan]:
        """Plan, apply, re-gather until the host converges (or fails)."""
        ctx = ctx or self.ctx
        started = time.monotonic()
        done: list[str] = []
        plan = planner(self.facts, ctx)
        for _ in range(MAX_ROUNDS):
            if plan.error or not plan.changed:
                break
            self.show_diff(plan)
            if self.check:
                return self.outcome(plan.step, CHANGED, plan.summary(), started), plan
            try:
                self.apply(plan)
            except StepFailed as error:
                if not error.conflict:
                    return self.outcome(plan.step, FAILED, f"{plan.summary()}: {error}", started), plan
            else:
                done.append(plan.summary())
            last = plan
            self.gather()
            plan = planner(self.facts, ctx)
            plan.handler = plan.handler or last.handler
        else:
            return self.outcome(plan.step, FAILED, "did not converge: " + plan.summary(), started), plan
        if plan.error:
            return self.outcome(plan.step, FAILED, plan.error, started), plan
        if done:
            return self.outcome(plan.step, CHANGED, "; ".join(done), started), plan
        return self.outcome(plan.step, OK, "; ".join(plan.notes), started), plan

    def apply(self, plan: StepPlan) -> None:
        for local, remote in plan.uploads:
            self.connection.put(local, remote)
        self.run(apply_script(plan, self.stamp))

    def verify(self, step: str, script: str) -> Outcome:
        started = time.monotonic()
        if self.check:
            return self.outcome(step, SKIPPED, "not run in check mode", started)
        try:
            output = self.run(script)
        except StepFailed as error:
            return self.outcome(step, FAILED, str(error), started)
        found = [line.split(" ", 1)[1] for line in output.splitlines() if line.startswith(host_facts.MARK)]
        return self.outcome(step, OK, "; ".join(found), started)

    def show_diff(self, plan: StepPlan) -> None:
        if self.diff and plan.files:
            say("\n".join(f"--- {self.host.name} ---\n{change.diff()}" for change in plan.files))

    def outcome(self, step: str, status: str, message: str, started: float) -> Outcome:
        outcome = Outcome(
            self.host.name, step, status, message, time.monotonic() - started, self.facts.docker_version
        )
        return outcome

    def close(self) -> None:
        self.connection.close()


def unreachable_outcome(host: Host, step: str, error: BaseException, started: float) -> Outcome | None:
    """An ``unreachable`` outcome when ``error`` is an SSH-level failure."""
    reason = unreachable_reason(error, host)
    if reason is None:
        return None
    return Outcome(host.name, step, "unreachable", reason, time.monotonic() - started)


def last_words(stdout: str, stderr: str) -> str:
    """Why a script failed: its last ``fail`` mark, a rollback's story, or its last line."""
    marks = [
        line[len(host_facts.MARK) + 1 :] for line in stdout.splitlines() if line.startswith(host_facts.MARK)
    ]
    failures = [mark[len("fail ") :] for mark in marks if mark.startswith("fail ")]
    if failures:
        return failures[-1]
    restored = [mark[len("restored ") :] for mark in marks if mark.startswith("restored ")]
    if restored:
        running = "running again" if "docker running-after-rollback" in marks else "NOT running"
        return f"Docker did not come back; restored {', '.join(restored)} from backups; Docker {running}"
    lines = [line for line in (stderr or stdout).strip().splitlines() if line.strip()]
    return lines[-1] if lines else "no output"
