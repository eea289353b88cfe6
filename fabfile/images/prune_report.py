"""What prune-registry shows: per repository the tags kept and deleted, then the totals."""

from __future__ import annotations

from tabulate import tabulate

from ..model.outcome import FAILED
from ..model.units import decimal_size
from .prune_plan import (
    CURRENT,
    DELETED,
    NEWEST,
    OUTSIDE,
    PINNED,
    SAME_IMAGE,
    SINCE,
    UNDATED,
    UNREAD,
    Kept,
    PrunePlan,
)

STEP = "prune-registry"


def kept_text(kept: Kept) -> str:
    """``2024.1 (current)``, ``2023.2 (newest)``, ``2023.2-b (same image as 2023.2)``; outside the image
    list, the tag alone (the row says why)."""
    if kept.why == OUTSIDE:
        return kept.tag.name
    why = {CURRENT: "current", NEWEST: "newest", UNREAD: "unread", UNDATED: "undated"}.get(kept.why, "")
    if kept.why == SAME_IMAGE:
        why = f"same image as {kept.like}"
    elif kept.why == PINNED:
        why = kept.like
    elif kept.why == SINCE:
        why = f"{SINCE}: {kept.like} uses it" if kept.like else f"{SINCE}: another image now"
    return f"{kept.tag.name} ({why})"


def tags_data(plan: PrunePlan) -> dict:
    """What --json shows of each repository: every tag kept and why, every tag deleted (or to delete)."""
    return {
        "repositories": [
            {
                "name": repo.name,
                "status": repo.status,
                "kept": [{"tag": kept.tag.name, "why": kept_text(kept).removeprefix(kept.tag.name).strip(" ()")} for kept in repo.kept],
                "deleted": [tag.name for tag in repo.deleted],
            }
            for repo in plan.repositories + plan.others
        ]
    }


def table(plan: PrunePlan, planned: bool = False) -> str:
    """One row per repository: tags kept (and why), deleted (``planned``: to delete), status."""
    rows = [
        [
            repo.name,
            ", ".join(kept_text(kept) for kept in repo.kept) or "-",
            ", ".join(tag.name for tag in repo.deleted) or "-",
            repo.status,
            repo.message,
        ]
        for repo in plan.repositories + plan.others
    ]
    headers = ["repository", "kept", "to delete" if planned else "deleted", "status", "details"]
    title = "REGISTRY (nothing was deleted)" if planned else "REGISTRY"
    shown = tabulate(rows, headers=headers, disable_numparse=True, maxcolwidths=[None, 50, 40, None, 60])
    return f"{title}\n{shown}\n{_why_they_go(plan, planned)}\n{STEP}: {totals(plan)}"


def _why_they_go(plan: PrunePlan, planned: bool) -> str:
    """Why the tags in the last column go: what every one of them is not."""
    if not any(repo.deleted for repo in plan.repositories):
        return ""
    verb = "to delete" if planned else "deleted"
    return (
        f"{verb}: not in the image list, named by no kept release (images.keep_releases, --lock) and older "
        f"than the {plan.keep} newest other image{'s' if plan.keep != 1 else ''} of its repository (--keep {plan.keep})\n"
    )


def totals(plan: PrunePlan, used: tuple[int, int] | None = None) -> str:
    """Repositories, tags and manifests deleted (or to delete), and the bytes freed (or expected)."""
    tags = sum(len(repo.deleted) for repo in plan.repositories)
    failed = sum(1 for repo in plan.repositories if repo.status == FAILED)
    done = any(repo.status == DELETED for repo in plan.repositories) or used is not None
    verb = "deleted" if done else "to delete"
    text = f"{len(plan.repositories)} repositories: {tags} tags {verb} ({len(plan.deletes)} manifests)"
    text += f", {failed} failed" if failed else ""
    if used:
        before, after = used
        freed = decimal_size(max(0, before - after))
        return f"{text}; freed {freed} ({decimal_size(before)} -> {decimal_size(after)})"
    text = f"{text}, about {decimal_size(plan.freed)} to free" if plan.deletes else text
    return text + _others(plan)


def _others(plan: PrunePlan) -> str:
    """The repositories outside the image list: left alone, and what --all-repositories would delete there."""
    if not plan.others:
        return ""
    would = sum(len(repo.would) for repo in plan.others)
    more = f" (--all-repositories would delete {would} tags there)" if would else ""
    return f"; {len(plan.others)} repositories not in the image list left alone{more}"
