"""What prune-registry shows: per repository the tags kept and deleted, then the totals."""

from __future__ import annotations

from tabulate import tabulate

from ..model.outcome import FAILED
from ..model.units import decimal_size
from .prune_plan import CURRENT, DELETED, NEWEST, SAME_IMAGE, UNREAD, Kept, PrunePlan

STEP = "prune-registry"


def kept_text(kept: Kept) -> str:
    """``2024.1 (current)``, ``2023.2 (newest)``, ``2023.2-b (same image as 2023.2)``."""
    why = {CURRENT: "current", NEWEST: "newest", UNREAD: "unread"}.get(kept.why, "")
    if kept.why == SAME_IMAGE:
        why = f"same image as {kept.like}"
    return f"{kept.tag.name} ({why})"


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
        for repo in plan.repositories
    ]
    headers = ["repository", "kept", "to delete" if planned else "deleted", "status", "details"]
    title = "REGISTRY (nothing was deleted)" if planned else "REGISTRY"
    shown = tabulate(rows, headers=headers, disable_numparse=True, maxcolwidths=[None, 50, 40, None, 60])
    return f"{title}\n{shown}\n\n{STEP}: {totals(plan)}"


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
    return f"{text}, about {decimal_size(plan.freed)} to free" if plan.deletes else text
