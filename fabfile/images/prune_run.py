"""prune-registry as a plan: which tags go (from one scan of the registry), and the one job that,
under the host's lock, deletes them by digest through the writer only root reaches (each repository's
tags looked at again first) and collects the garbage, while every read-only instance keeps serving."""

from __future__ import annotations

import json

from .. import payload
from ..model.context import StepContext
from ..model.facts import HostFacts
from ..model.marks import MARK, marks
from ..model.outcome import FAILED
from ..model.plan import Done, Job, StepPlan
from ..registry import writer
from ..registry.api import answer, local_base, query
from ..registry.collect import GC_PENDING, Collector, cleanup_script, collect_script, prepare_script
from ..registry.container import create_registry
from ..registry.readonly import writable
from .host_lock import lock_not_taken, locked
from .model import Image
from .prune_plan import SINCE, Pins, PrunePlan, Repository, plan_prune
from .prune_report import STEP, table, tags_data, totals
from .prune_result import Rechecked, after_deletes, going

NOT_DEPLOYED = (
    "the registry container is not as deploy-host makes it (read-only from this version on: garbage "
    "collection needs no push meanwhile): run fab deploy-host first"
)
LEFTOVER = "garbage left by an earlier run that did not finish"


def scan_query(ctx: StepContext):
    """The section that lists every repository's tags and what each points at."""
    return query("scan", ctx, {"scan": local_base(ctx)})


def prune_planner(current: list[Image], keep: int, every: bool = False, pins: Pins | None = None):
    """The planner: the tags that go (in the list's repositories; in all of them with ``every``), all but
    those the kept releases name (``pins``), and the job that deletes them and frees their space."""

    def plan_registry_prune(facts: HostFacts, ctx: StepContext) -> StepPlan:
        plan = StepPlan(STEP)
        registry = create_registry(facts, ctx)
        scanned = answer(facts, "scan")
        if registry.error or scanned.get("error"):
            plan.error = registry.error or f"the registry did not list its repositories: {scanned['error']}"
            return plan
        repositories = [Repository.from_answer(found) for found in scanned.get("repositories") or ()]
        pruned = plan_prune(repositories, current, keep, every, pins)
        leftover = GC_PENDING in facts.files
        plan.detail = table(pruned, planned=True)
        plan.data = tags_data(pruned)
        if not pruned.deletes and not leftover:
            plan.notes.append(f"nothing to delete: {totals(pruned)}")
        elif registry.changed:
            plan.error = NOT_DEPLOYED
        elif writable(facts, ctx):
            plan.error = writable(facts, ctx)
        else:
            plan.jobs.append(prune_job(pruned, leftover, facts, ctx))
        return plan

    return plan_registry_prune


def prune_job(pruned: PrunePlan, leftover: bool, facts: HostFacts, ctx: StepContext) -> Job:
    """One script under the host's lock: note the pending garbage and the volume's size, delete through
    the writer, collect; the read-only registry serves throughout and is never touched."""
    wait = ctx.limits.docker_wait
    # The collection may take what is left of the host's time limit once the writer has had its
    # wait and the lock its own; at least a minute.
    collect_timeout = max(60, ctx.limits.command_timeout - wait - 180)
    deletes = payload.script(deletes_request(pruned)) if pruned.deletes else ""
    script = locked(
        f"( {prepare_script(Collector.of(ctx))} ) || exit $?\n"
        f"( {collect_script(ctx, pruned.delete_untagged, wait, collect_timeout, deletes)} )\n"
        # The table of deletes is read either way; the collection's own failure is its fail mark. One that
        # ended without a word (killed) may have left the writer or the collector running: they go.
        f'rc=$?; echo "{MARK} collect-status $rc"\n'
        f'[ "$rc" -eq 0 ] || ( {cleanup_script(ctx)} )\n'
    )

    def recover(message: str) -> str:
        # Lost or killed: nothing may be left running. Once the lock is free, the writer and the
        # collector go (nothing, when they are gone already). A run that never got the lock changed nothing.
        return "" if lock_not_taken(message) else locked(cleanup_script(ctx))

    return Job(
        summary=_would(pruned, leftover),
        script=script,
        done=lambda output: pruned_done(pruned, output),
        diff="".join(f"- {repo.name}:{tag.name}\n" for repo in pruned.repositories for tag in repo.deleted),
        recover=recover,
        recover_done=lambda output: "no writer nor collector left running",
    )


def deletes_request(pruned: PrunePlan) -> dict:
    """The program's request: per repository, the manifests to delete and the tags planned to go."""
    repositories = [
        {"name": repo.name, "manifests": list(repo.manifests), "going": going(repo)}
        for repo in pruned.repositories
        if repo.manifests
    ]
    return {"prune": {"socket": writer.WRITER_SOCKET, "repositories": repositories}}


def pruned_done(pruned: PrunePlan, output: str) -> Done:
    """The row and table once the script ran: what was deleted, kept since the scan, failed; the space freed."""
    plan = pruned
    found = marks(output, "deletes")
    try:
        answered = json.loads(found[-1]) if found else {}
        answers, current = answered.get("deleted") or [], answered.get("current") or {}
    except (ValueError, AttributeError):
        answers, current = None, {}
    if pruned.deletes and (not isinstance(answers, list) or len(answers) != len(pruned.deletes)):
        counted = len(answers) if isinstance(answers, list) else 0
        failures = marks(output, "fail")
        why = f": {failures[-1]}" if failures else ""
        return Done(
            f"the registry answered {counted} of {len(pruned.deletes)} deletes{why}", failed=True, detail=table(plan)
        )
    plan = after_deletes(pruned, {}, Rechecked.from_answer(pruned.deletes, answers or [], current))
    failures = marks(output, "fail")
    if failures:
        return Done(f"{totals(plan)}; garbage collection: {failures[-1]}", failed=True, detail=table(plan))
    status = (marks(output, "collect-status") or ["0"])[-1].strip()
    if status != "0":
        return Done(f"{totals(plan)}; garbage collection: exit {status}", failed=True, detail=table(plan))
    used = _used(marks(output, "used-before"), marks(output, "used-after"))
    message = totals(plan, used) + ("" if used else "; volume usage unknown")
    message += "".join(f"; {note}" for note in (*plan.notes, "; ".join(marks(output, "collected"))) if note)
    failed = [repo for repo in plan.repositories if repo.status == FAILED]
    if failed:
        message += f"; {failed[0].name}: {failed[0].message}"
    # Tags kept because they changed since the scan: said, though nothing failed.
    since = [repo for repo in plan.repositories if repo.status != FAILED and any(k.why == SINCE for k in repo.kept)]
    message += "".join(f"; {repo.name}: {repo.message}" for repo in since)
    return Done(message, failed=bool(failed), detail=table(plan), data=tags_data(plan))


def _used(before: list[str], after: list[str]) -> tuple[int, int] | None:
    numbers = [text[-1].strip() if text else "" for text in (before, after)]
    return (int(numbers[0]), int(numbers[1])) if all(n.isdigit() for n in numbers) else None


def _would(pruned: PrunePlan, leftover: bool) -> str:
    """What would be deleted and freed, and garbage an earlier run left."""
    parts = [totals(pruned)] if pruned.deletes else []
    parts += [f"would collect {LEFTOVER}"] if leftover else []
    return "; ".join(parts + list(pruned.notes))
