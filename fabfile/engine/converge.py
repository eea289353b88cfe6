"""Converging a host: plan from its facts, apply only what differs, and say how it went.

This is the one place that decides what check mode and a conflict mean:
in check mode nothing is applied and a planned change is reported as
``changed``; a file that changed under us since the facts were gathered
(another run) makes the engine gather again and plan anew.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import replace

from ..remote.apply import apply_script, rollback_script
from ..remote.facts import HostFacts
from ..remote.marks import marks
from .context import StepContext
from .hostrun import HostRun, RemoteError
from .plan import PlanError, StepPlan, merged_handler
from .result import CHANGED, FAILED, OK, SKIPPED, Outcome

Planner = Callable[[HostFacts, StepContext], StepPlan]
MAX_ROUNDS = 3


def converge(
    run: HostRun, planner: Planner, *, then: str = "", settle: bool = True, step: str = ""
) -> tuple[Outcome, StepPlan]:
    """Plan, apply (with ``then`` in the same session), until the host has what the planner wants.

    ``settle``: gather again after applying and plan once more, for steps whose
    commands change what later steps read; without it, a clean apply is trusted.
    """
    started = time.monotonic()
    done: list[str] = []
    handler = None
    for _ in range(MAX_ROUNDS):
        plan = _planned(planner, run, step)
        name = step or plan.step
        unsafe = [f"{f.path}: {run.facts.unreadable[f.path]}" for f in plan.files if f.path in run.facts.unreadable]
        if unsafe and not plan.error:
            plan.error = f"{'; '.join(unsafe)}: cannot be edited safely; left as it is"
        if plan.error:
            return run.outcome(name, FAILED, plan.error, started), plan
        if not plan.changed:
            plan.handler = merged_handler(plan.handler, handler)
            if done:
                return run.outcome(name, CHANGED, "; ".join(done), started), plan
            return run.outcome(name, OK, "; ".join(plan.notes), started), plan
        run.show_diff(plan)
        if run.check:
            return run.outcome(name, CHANGED, plan.summary(), started), plan
        try:
            apply(run, plan, then)
        except RemoteError as error:
            if not error.conflict:
                return run.outcome(name, FAILED, f"{plan.summary()}: {error}", started), plan
            run.gather()
            continue
        done.append(plan.summary())
        handler = merged_handler(handler, plan.handler)
        if not settle:
            plan.handler = handler
            return run.outcome(name, CHANGED, "; ".join(done), started), plan
        run.gather()
    return run.outcome(step or plan.step, FAILED, "files kept changing under another run; try again", started), plan


def _planned(planner: Planner, run: HostRun, step: str) -> StepPlan:
    try:
        return planner(run.facts, run.ctx)
    except PlanError as error:
        return StepPlan(step or getattr(planner, "__name__", "plan").replace("_", "-"), error=str(error))


def apply(run: HostRun, plan: StepPlan, then: str = "") -> str:
    """Upload (to the run's private folder, ``$UPLOADS`` in commands), then write files and run commands under the host's lock, then ``then``; its output."""
    for local, name in plan.uploads:
        run.upload(local, name)
    run.left_pending = run.left_pending or bool(plan.handler and plan.files)
    return run.run(apply_script(plan, run.stamp, run.ctx.limits.backups_kept, run.uploads) + then)


def undo_pending(run: HostRun) -> str:
    """Roll back what this run wrote that no Docker handler applied; a note for the failed row.

    A run that stops between writing a file and reloading Docker would leave
    the file and the running Docker disagreeing; the files go back instead.
    """
    if not run.left_pending or run.check:
        return ""
    run.left_pending = False
    try:
        output = run.run(rollback_script())
    except Exception as error:  # noqa: BLE001 - the host may be gone; its next run finds PENDING
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        return f"; could not roll back ({reason}): the next run applies the pending changes"
    restored, lost = marks(output, "restored"), marks(output, "not-restored")
    notes = [f"rolled back {', '.join(restored)}"] if restored else []
    notes += [f"could NOT restore {', '.join(lost)}"] if lost else []
    return "".join(f"; {note}" for note in notes)


def run_steps(run: HostRun, planners: Iterable[Planner]) -> bool:
    """Converge each step in order, reporting each; stop at the first that fails. True if none failed.

    Later steps hear of the Docker handler earlier ones notified (``ctx.notified``).
    """
    notified = None
    for planner in planners:
        before = run.ctx
        run.ctx = replace(before, notified=notified)
        try:
            outcome, plan = converge(run, planner)
        finally:
            run.ctx = before
        if outcome.status == CHANGED:
            notified = merged_handler(notified, plan.handler)
        if run.check and outcome.status == FAILED and any(o.status == CHANGED for o in run.outcomes):
            # Check mode made none of the earlier changes this step depends on.
            outcome.status, outcome.message = SKIPPED, "depends on the changes above: " + outcome.message
        elif outcome.status == FAILED:
            outcome.message += undo_pending(run)
        run.report(outcome)
        if outcome.status in (FAILED, SKIPPED):
            return False
    return True


def verify(run: HostRun, step: str, script: str) -> Outcome:
    """Run a check that changes nothing Docker runs; its marks are the outcome's message."""
    started = time.monotonic()
    try:
        output = run.run(script)
    except RemoteError as error:
        return run.report(run.outcome(step, FAILED, str(error), started))
    return run.report(run.outcome(step, OK, "; ".join(marks(output)), started))
