"""What prune-registry did, from what its program answered: which tags went, which stayed and why.

The program looks at every tag of a repository again just before it deletes
there, with the registry read-only to everyone else: a manifest that a tag not
planned to go now uses (pushed since the scan) is not deleted, and a tag
planned to go that names another image now stays with it.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from ..model.outcome import FAILED
from .prune_plan import DELETED, KEPT, SINCE, TO_DELETE, Kept, PrunePlan, RepositoryPlan


@dataclass(frozen=True)
class Rechecked:
    """The program's findings: why a DELETE failed, the tag that kept a manifest, each repository's tags
    as they were just before the deletes ({repository: {tag: digest}}; a repository missing: unknown)."""

    errors: dict[tuple[str, str], str] = field(default_factory=dict)
    kept: dict[tuple[str, str], str] = field(default_factory=dict)
    current: dict[str, dict[str, str]] = field(default_factory=dict)

    @classmethod
    def from_answer(cls, deletes: list[tuple[str, str]], answers: list[dict], current: dict) -> Rechecked:
        """From the program's answer to ``deletes`` ((repository, digest), in order), one answer each."""
        errors, kept = {}, {}
        for item, answer in zip(deletes, answers, strict=True):
            if answer.get("kept"):
                kept[item] = str(answer["kept"])
            elif answer.get("error"):
                errors[item] = str(answer["error"])
        tags = {str(repo): dict(found) for repo, found in (current or {}).items() if isinstance(found, dict)}
        return cls(errors, kept, tags)


def after_deletes(
    plan: PrunePlan, errors: dict[tuple[str, str], str], rechecked: Rechecked | None = None
) -> PrunePlan:
    """The plan once deleted: ``errors`` maps (repository, digest) to why its DELETE failed; ``rechecked``
    is what the program saw just before deleting."""
    found = rechecked or Rechecked()
    errors = {**found.errors, **errors}
    return replace(plan, repositories=tuple(_deleted(repo, errors, found) for repo in plan.repositories))


def _deleted(repo: RepositoryPlan, errors: dict[tuple[str, str], str], found: Rechecked) -> RepositoryPlan:
    if repo.status != TO_DELETE:
        return repo
    failed = {digest: errors[(repo.name, digest)] for digest in repo.manifests if (repo.name, digest) in errors}
    held = {digest: found.kept[(repo.name, digest)] for digest in repo.manifests if (repo.name, digest) in found.kept}
    now = found.current.get(repo.name, {})
    changed = [tag for tag in repo.deleted if tag.digest in held or now.get(tag.name, tag.digest) != tag.digest]
    gone = tuple(tag for tag in repo.deleted if tag.digest not in failed and tag not in changed)
    stayed = tuple(Kept(tag, SINCE, held.get(tag.digest, "")) for tag in changed)
    manifests = tuple(digest for digest in repo.manifests if digest not in failed and digest not in held)
    after = replace(repo, kept=repo.kept + stayed, deleted=gone, manifests=manifests, status=DELETED if manifests else KEPT)
    if failed:
        left = [tag.name for tag in repo.deleted if tag.digest in failed]
        reason = f"not deleted: {', '.join(left) or 'platform manifests'}: {next(iter(failed.values()))}"
        return replace(after, status=FAILED, message=reason)
    if stayed:
        return replace(after, message=f"kept, changed since the scan: {_names(stayed)}")
    return after


def _names(stayed: tuple[Kept, ...]) -> str:
    return ", ".join(f"{kept.tag.name} ({kept.like} uses it)" if kept.like else kept.tag.name for kept in stayed)


def going(repo: RepositoryPlan) -> list[tuple[str, str]]:
    """(tag, digest) of each tag planned to go: the program lets these, and only these, not keep a manifest."""
    return [(tag.name, tag.digest) for tag in repo.deleted]
