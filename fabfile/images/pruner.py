"""Pruning the registry on the deployment host: scan, delete by digest, collect garbage read-only."""

from __future__ import annotations

from ..docker.collect import Container, collect_script, prepare_script, restore_script
from ..engine.hostrun import HostRun, RemoteError
from ..remote.api import local_base, query_registry
from ..remote.marks import marks
from .model import Image
from .prune import PrunePlan, Repository, after_deletes, plan_prune


class Pruner:
    """One prune of the registry that ``run``'s host runs."""

    def __init__(self, run: HostRun, current: list[Image], keep: int) -> None:
        self.run = run
        self.current = current
        self.keep = keep
        self.wait = run.ctx.limits.docker_wait
        # The collection may take what is left of the host's time limit once the registry has
        # had its waits (read-only, back to normal, a restore); at least a minute.
        self.collect_timeout = max(60, run.ctx.limits.command_timeout - 3 * self.wait - 60)

    def plan(self) -> PrunePlan:
        """Every repository's tags, from one round trip of registry queries, and what goes."""
        answer = query_registry(self.run, {"scan": local_base(self.run.ctx)})
        if answer.get("error"):
            raise RemoteError(f"the registry did not list its repositories: {answer['error']}")
        repositories = [Repository.from_answer(found) for found in answer.get("repositories") or ()]
        return plan_prune(repositories, self.current, self.keep)

    def usage(self) -> int | None:
        """Note that garbage is pending (from now until it is collected); the volume's bytes now."""
        output = self.run.run(prepare_script(self.container(), self.wait))
        return _number(marks(output, "used-before"))

    def delete(self, plan: PrunePlan) -> PrunePlan:
        """DELETE every manifest the plan names; the plan with what was deleted and what failed."""
        deletes = plan.deletes
        if not deletes:
            return plan
        base = local_base(self.run.ctx)
        request = {"delete": [[base, repository, digest] for repository, digest in deletes]}
        answers = query_registry(self.run, request).get("deleted") or []
        if len(answers) != len(deletes):
            raise RemoteError(f"the registry answered {len(answers)} of {len(deletes)} deletes")
        errors = {
            item: answer["error"]
            for item, answer in zip(deletes, answers, strict=True)
            if answer.get("error")
        }
        return after_deletes(plan, errors)

    def collect(self, delete_untagged: bool) -> tuple[int | None, str]:
        """Garbage-collect read-only, then normal again: (volume bytes after, the collector's summary).

        Raises ``RemoteError`` saying whether the registry is back to normal; when the
        script could not say (lost, killed), the normal container is put back from here.
        """
        container = self.container()
        try:
            output = self.run.run(collect_script(container, delete_untagged, self.wait, self.collect_timeout))
        except RemoteError as error:
            if "back to normal" in str(error) or "run fab deploy-host" in str(error):
                raise
            raise RemoteError(f"{error}; {self.restore(container)}") from None
        return _number(marks(output, "used-after")), "; ".join(marks(output, "collected"))

    def restore(self, container: Container) -> str:
        """Put the normal registry back (or find it there); what happened, for the row."""
        # A new connection: the one that ran the collection may be what failed.
        worker = self.run.sibling()
        try:
            output = worker.run(restore_script(container, self.wait))
        except RemoteError as error:
            return f"the registry could NOT be put back ({error}): run fab deploy-host"
        finally:
            worker.close()
        if "already" in marks(output, "restored"):
            return "the registry was already back to normal"
        return "the registry is back to normal"

    def container(self) -> Container:
        return Container.of(self.run.facts, self.run.ctx)


def _number(found: list[str]) -> int | None:
    text = found[-1].strip() if found else ""
    return int(text) if text.isdigit() else None
