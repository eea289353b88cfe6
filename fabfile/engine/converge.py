"""Converging a host: plan from its facts, apply only what differs, and say how it went.

This is the one place that decides what check mode, diff mode and a conflict
mean: in check mode nothing is applied and a planned change is reported as
``changed``; diff mode shows every change before it is applied (or instead);
a file that changed under us since the facts were gathered (another run)
makes the engine gather again and plan anew.
"""

from __future__ import annotations

import shlex
import time
from dataclasses import replace

from ..model.errors import RemoteError
from ..model.marks import marks
from ..model.outcome import CHANGED, FAILED, OK, SKIPPED, Outcome
from ..model.plan import Done, Job, PlanError, StepPlan, merged_handler
from ..model.units import decimal_size
from ..transport.apply import apply_script, handler_script, rollback_script
from .action import Check, Planner, Step
from .hostrun import HostRun
from .report import print_line

MAX_ROUNDS = 3


def converge(run: HostRun, step: Step) -> tuple[Outcome, StepPlan]:
    """Plan, apply, until the host has what the planner wants; the row and the last plan."""
    started = time.monotonic()
    done: list[str] = []
    data: dict = {}
    handler = None
    for _ in range(MAX_ROUNDS):
        plan = planned(step.planner, run, step.name)
        name = step.name or plan.step
        unsafe = [f"{f.path}: {run.facts.unreadable[f.path]}" for f in plan.files if f.path in run.facts.unreadable]
        if unsafe and not plan.error:
            plan.error = f"{'; '.join(unsafe)}: cannot be edited safely; left as it is"
        if plan.error:
            _show(run, plan.detail)
            return _row(run, name, FAILED, plan.error, started, plan.data), plan
        if not plan.changed:
            plan.handler = merged_handler(plan.handler, handler)
            if done:
                return _row(run, name, CHANGED, "; ".join(done), started, data), plan
            _show(run, plan.detail)
            return _row(run, name, OK, "; ".join(plan.notes), started, plan.data), plan
        if run.ctx.modes.diff:
            _show(run, _diff(run, plan), gap=False)
        if run.ctx.modes.check:
            _show(run, plan.detail)
            return _row(run, name, CHANGED, plan.summary(), started, plan.data), plan
        then = step.then(run.facts, run.ctx) if step.then else ""
        try:
            messages, failed, changed, data = apply(run, plan, then)
        except RemoteError as error:
            if not error.conflict:
                return _row(run, name, FAILED, f"{plan.summary()}: {error}", started, plan.data), plan
            run.gather()
            continue
        done.append("; ".join(messages))
        handler = merged_handler(handler, plan.handler)
        settle = step.settle(run.facts, run.ctx) if callable(step.settle) else step.settle
        if failed or not settle:
            plan.handler = handler
            status = FAILED if failed else CHANGED if changed or len(done) > 1 else OK
            return _row(run, name, status, "; ".join(done), started, data), plan
        run.gather()
    return _row(run, step.name or plan.step, FAILED, "files kept changing under another run; try again", started), plan


def planned(planner: Planner, run: HostRun, step: str = "") -> StepPlan:
    """The planner's plan, or a plan whose error says why it could not plan."""
    try:
        return planner(run.facts, run.ctx)
    except PlanError as error:
        return StepPlan(step or getattr(planner, "__name__", "plan").replace("_", "-"), error=str(error))


def apply(run: HostRun, plan: StepPlan, then: str = "") -> tuple[list[str], bool, bool, dict]:
    """Upload, write files and run commands under the host's lock (with the Docker handler when the plan
    fires it, then ``then``) in one session; then each job. The row's messages, whether a job failed,
    whether anything changed, and the jobs' data."""
    for local, name in plan.uploads:
        run.upload(local, name)
    messages = [plan.summary()] if plan.files or plan.commands or plan.fire else []
    if plan.files or plan.commands or plan.fire or then:
        run.left_pending = run.left_pending or bool(plan.handler and plan.files)
        commands = list(plan.commands)
        if plan.fire:
            commands.append(handler_script(plan.fire.registry, run.ctx.limits.docker_wait, plan.fire.insecure))
        work = replace(plan, commands=commands)
        run.run(apply_script(work, run.stamp, run.ctx.limits.backups_kept, run.uploads, run.host.write_as) + then)
        run.left_pending = run.left_pending and not plan.fire
    data: dict = {}
    changed = bool(messages)
    for job in plan.jobs:
        _progress(run, plan.step, job.summary)
        for local, name in job.uploads:
            run.upload(local, name, _upload_progress(run, plan.step, local))
        done = run_job(run, job)
        _show(run, done.detail)
        messages.append(done.message)
        data.update(done.data)
        changed = changed or done.changed
        if done.failed:
            return messages, True, changed, data
    return messages, False, changed, data


def run_job(run: HostRun, job: Job) -> Done:
    """Run a job's script (``$UPLOADS`` set to the run's upload folder) and read its output; a job that
    fails without saying what it left gets its ``recover`` script, on a new connection."""
    script = f"UPLOADS={shlex.quote(run.uploads)}; export UPLOADS\n{job.script}"
    on_line = None
    if job.on_line is not None:
        read = job.on_line

        def on_line(line: str) -> None:
            shown = read(line)
            if shown and not run.quiet:
                print_line(shown)

    try:
        return job.done(run.run(script, on_line, job.timeout))
    except RemoteError as error:
        recovery = job.recover(str(error)) if job.recover else ""
        if not recovery:
            raise
        raise RemoteError(f"{error}; {_recovered(run, recovery, job)}", error.code) from None


def _progress(run: HostRun, step: str, text: str) -> None:
    if not run.quiet:
        print_line(f"{run.host.name} | {step} | {text}")


def _upload_progress(run: HostRun, step: str, local: str):
    """A callback that shows an upload's progress in tenths."""
    shown: set[int] = set()

    def uploaded(sent: int, total: int) -> None:
        tenth = sent * 10 // max(total, 1)
        if tenth not in shown:
            shown.add(tenth)
            _progress(run, step, f"uploading {local}: {decimal_size(sent)}/{decimal_size(total)}")

    return uploaded


def _recovered(run: HostRun, script: str, job: Job) -> str:
    # A new connection: the one that ran the job may be what failed.
    worker = run.sibling()
    try:
        output = worker.run(script)
    except RemoteError as error:
        return f"could not recover ({error})"
    finally:
        worker.close()
    return job.recover_done(output) if job.recover_done else "recovered"


def undo_pending(run: HostRun) -> str:
    """Roll back what this run wrote that no Docker handler applied; a note for the failed row.

    A run that stops between writing a file and reloading Docker would leave
    the file and the running Docker disagreeing; the files go back instead.
    """
    if not run.left_pending or run.ctx.modes.check:
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


def run_steps(run: HostRun, steps: tuple[Step, ...]) -> bool:
    """Converge each step in order, recording each row; stop at the first that fails. True if none failed.

    Later steps hear of the Docker handler earlier ones notified (``ctx.notified``).
    """
    notified = None
    for step in steps:
        before = run.ctx
        run.ctx = replace(before, notified=notified)
        try:
            outcome, plan = converge(run, step)
        finally:
            run.ctx = before
        if outcome.status == CHANGED:
            notified = merged_handler(notified, plan.handler)
        if step.check and not outcome.failed:
            amend(outcome, run, step.check(run.facts, run.ctx, outcome.status == CHANGED))
        if run.ctx.modes.check and outcome.status == FAILED and any(o.status == CHANGED for o in run.outcomes):
            # Check mode made none of the earlier changes this step depends on.
            outcome.status, outcome.message = SKIPPED, "depends on the changes above: " + outcome.message
        elif outcome.status == FAILED:
            outcome.message += undo_pending(run)
        run.record(outcome)
        if outcome.status in (FAILED, SKIPPED):
            return False
    return True


def checked(run: HostRun, check: Check, started: float) -> Outcome:
    """The row of a check: skipped in check mode, known from the facts, or its script's marks."""
    if run.ctx.modes.check:
        return run.outcome(check.step, SKIPPED, "not run in check mode", started)
    if check.failed:
        return run.outcome(check.step, FAILED, check.failed, started)
    message = check.passed
    if check.script:
        try:
            output = run.run(check.script)
        except RemoteError as error:
            return run.outcome(check.step, FAILED, str(error), started)
        message = check.passed or "; ".join(marks(output))
    return run.outcome(check.step, OK, message, started)


def amend(outcome: Outcome, run: HostRun, check: Check | None) -> None:
    """A step's row with its own check: a failure replaces it; a pass replaces "nothing to change" or is added."""
    if check is None or run.ctx.modes.check:
        return
    found = checked(run, check, time.monotonic())
    outcome.seconds += found.seconds
    if found.status == FAILED or outcome.status == OK:
        outcome.status, outcome.message = found.status, found.message
    elif found.message:
        outcome.message = f"{outcome.message}; {found.message}" if outcome.message else found.message


def _row(run: HostRun, step: str, status: str, message: str, started: float, data: dict | None = None) -> Outcome:
    outcome = run.outcome(step, status, message, started)
    outcome.data = dict(data or {})
    return outcome


def _diff(run: HostRun, plan: StepPlan) -> str:
    """Every file's before and after, and what each job would change, each headed by the host."""
    parts = [change.diff() for change in plan.files] + [job.diff for job in plan.jobs if job.diff]
    return "\n".join(f"--- {run.host.name} ---\n{part}" for part in parts)


def _show(run: HostRun, text: str, gap: bool = True) -> None:
    """A plan's or a job's table, or a diff, printed whole (not for a quiet task: its table is the output)."""
    if text and not run.quiet:
        print_line(("\n" if gap else "") + text)
