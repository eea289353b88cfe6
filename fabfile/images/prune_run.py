"""prune-registry as a plan: which tags go (from one scan of the registry), and the one job that
deletes them by digest and collects the garbage with the registry read-only meanwhile."""

from __future__ import annotations

import json

from .. import payload
from ..model.context import StepContext
from ..model.facts import HostFacts
from ..model.marks import MARK, marks
from ..model.outcome import FAILED
from ..model.plan import Done, Job, StepPlan
from ..registry.api import answer, local_base, query, with_access
from ..registry.collect import GC_PENDING, Container, collect_script, prepare_script, restore_script
from ..registry.container import create_registry
from .model import Image
from .prune_plan import PrunePlan, Repository, after_deletes, plan_prune
from .prune_report import STEP, table, totals

NOT_DEPLOYED = (
    "the registry container is not as deploy-host makes it (deletes need REGISTRY_STORAGE_DELETE_ENABLED, "
    "set from this version on): run fab deploy-host first"
)
LEFTOVER = "garbage left by an earlier run that did not finish"


def scan_query(ctx: StepContext):
    """The section that lists every repository's tags and what each points at."""
    return query("scan", ctx, {"scan": local_base(ctx)})


def prune_planner(current: list[Image], keep: int):
    """The planner: the tags that go, and the job that deletes them and frees their space."""

    def plan_registry_prune(facts: HostFacts, ctx: StepContext) -> StepPlan:
        plan = StepPlan(STEP)
        registry = create_registry(facts, ctx)
        scanned = answer(facts, "scan")
        if registry.error or scanned.get("error"):
            plan.error = registry.error or f"the registry did not list its repositories: {scanned['error']}"
            return plan
        repositories = [Repository.from_answer(found) for found in scanned.get("repositories") or ()]
        pruned = plan_prune(repositories, current, keep)
        leftover = GC_PENDING in facts.files
        plan.detail = table(pruned, planned=True)
        if not pruned.deletes and not leftover:
            plan.notes.append(f"nothing to delete: {totals(pruned)}")
        elif registry.changed:
            plan.error = NOT_DEPLOYED
        else:
            plan.jobs.append(prune_job(pruned, leftover, facts, ctx))
        return plan

    return plan_registry_prune


def prune_job(pruned: PrunePlan, leftover: bool, facts: HostFacts, ctx: StepContext) -> Job:
    """One script: note the pending garbage and the volume's size, delete, collect read-only, put the
    registry back; a failure anywhere puts the registry back before it says so."""
    container = Container.of(facts, ctx)
    wait = ctx.limits.docker_wait
    # The collection may take what is left of the host's time limit once the registry has had its
    # waits (read-only, back to normal, a restore); at least a minute.
    collect_timeout = max(60, ctx.limits.command_timeout - 3 * wait - 60)
    deletes = with_access(ctx, {"delete": [[local_base(ctx), repo, digest] for repo, digest in pruned.deletes]})
    script = (
        f"( {prepare_script(container, wait)} ) || exit $?\n"
        f"out=$( {payload.script(deletes)} ) || out=\n"
        f'echo "{MARK} deletes $(printf \'%s\' "$out" | tail -1)"\n'
        f"( {collect_script(container, pruned.delete_untagged, wait, collect_timeout)} )\n"
        f'rc=$?; echo "{MARK} collect-status $rc"\n'
        # A collection that ended without a word (killed) may have left the registry read-only.
        f'[ "$rc" -eq 0 ] || ( {restore_script(container, wait)} )\n'
    )

    def recover(message: str) -> str:
        # The script puts the registry back itself when it can say so; lost or killed, from here.
        said = ("back to normal", "run fab deploy-host")
        return "" if any(words in message for words in said) else restore_script(container, wait)

    return Job(
        summary=_would(pruned, leftover),
        script=script,
        done=lambda output: pruned_done(pruned, output),
        diff="".join(f"- {repo.name}:{tag.name}\n" for repo in pruned.repositories for tag in repo.deleted),
        recover=recover,
        recover_done=_restored,
    )


def pruned_done(pruned: PrunePlan, output: str) -> Done:
    """The row and table once the script ran: what was deleted, what failed, the space freed."""
    plan = pruned
    found = marks(output, "deletes")
    try:
        answers = json.loads(found[-1]).get("deleted") if found else None
    except (ValueError, AttributeError):
        answers = None
    if not isinstance(answers, list) or len(answers) != len(pruned.deletes):
        counted = len(answers) if isinstance(answers, list) else 0
        return Done(f"the registry answered {counted} of {len(pruned.deletes)} deletes", failed=True, detail=table(plan))
    errors = {item: a["error"] for item, a in zip(pruned.deletes, answers, strict=True) if a.get("error")}
    plan = after_deletes(pruned, errors)
    failures = marks(output, "fail")
    if failures:
        return Done(f"{totals(plan)}; garbage collection: {failures[-1]}", failed=True, detail=table(plan))
    status = (marks(output, "collect-status") or ["0"])[-1].strip()
    if status != "0":
        back = _restored(output) if marks(output, "restored") else "the registry may be read-only: run fab deploy-host"
        return Done(f"{totals(plan)}; garbage collection: exit {status}; {back}", failed=True, detail=table(plan))
    used = _used(marks(output, "used-before"), marks(output, "used-after"))
    message = totals(plan, used) + ("" if used else "; volume usage unknown")
    message += "".join(f"; {note}" for note in (*plan.notes, "; ".join(marks(output, "collected"))) if note)
    failed = [repo for repo in plan.repositories if repo.status == FAILED]
    if failed:
        message += f"; {failed[0].name}: {failed[0].message}"
    return Done(message, failed=bool(failed), detail=table(plan))


def _used(before: list[str], after: list[str]) -> tuple[int, int] | None:
    numbers = [text[-1].strip() if text else "" for text in (before, after)]
    return (int(numbers[0]), int(numbers[1])) if all(n.isdigit() for n in numbers) else None


def _restored(output: str) -> str:
    if "already" in marks(output, "restored"):
        return "the registry was already back to normal"
    return "the registry is back to normal"


def _would(pruned: PrunePlan, leftover: bool) -> str:
    """What would be deleted and freed, and garbage an earlier run left."""
    parts = [totals(pruned)] if pruned.deletes else []
    parts += [f"would collect {LEFTOVER}"] if leftover else []
    return "; ".join(parts + list(pruned.notes))
