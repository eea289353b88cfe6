"""Which tags prune-registry deletes: the current list and the newest others stay, the rest go.

Pure functions of what the registry answered (``payload.registry_scan.scan``). The unit a
registry deletes is a manifest digest, and deleting it removes every tag that
points at it: a digest is deleted only when no tag that stays points at it, nor
at a manifest list holding it. Only the image list's repositories are pruned
(unless told every one): another cloud's release or the operator's own images
in the same registry are not this list's to judge. A tag whose image has no
creation date (a signature, an attestation) cannot be ranked by age: it stays.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from ..model.context import PROBE_REPOSITORY
from .lock import Lock
from .model import Image

# Why a tag stays.
CURRENT, NEWEST, SAME_IMAGE, UNREAD, UNDATED = "current", "newest", "same image", "unread", "undated"
# A release still kept (images.keep_releases, or a lock prune was given) names it: kept whatever --keep says.
PINNED = "pinned"
# Outside the image list (pruned only with --all-repositories); changed since the scan (seen just
# before the deletes: another tag now uses its image, or it names another image now).
OUTSIDE, SINCE = "not in the image list", "changed since the scan"
# What happens to a repository's tags that go; a repository outside the image list is left alone.
TO_DELETE, DELETED, KEPT, LEFT_ALONE = "to delete", "deleted", "kept", "left alone"


@dataclass(frozen=True)
class Tag:
    """One tag as the registry answered: its manifest, its platform manifests (a list's), its blobs."""

    repository: str
    name: str
    digest: str
    created: float | None = None
    children: tuple[str, ...] = ()
    blobs: tuple[tuple[str, int], ...] = ()
    error: str = ""

    @classmethod
    def from_answer(cls, repository: str, answer: dict) -> Tag:
        return cls(
            repository=repository,
            name=answer.get("tag") or "",
            digest=answer.get("digest") or "",
            created=created_seconds(answer.get("created") or ""),
            children=tuple(child for child in answer.get("children") or () if child),
            blobs=tuple((digest, int(size or 0)) for digest, size in answer.get("blobs") or ()),
            error=answer.get("error") or "",
        )

    @property
    def manifests(self) -> tuple[str, ...]:
        """Its digest and, for a manifest list, its platform manifests' digests."""
        return (self.digest, *self.children)


@dataclass(frozen=True)
class Repository:
    """One repository's tags, or why they could not be listed."""

    name: str
    tags: tuple[Tag, ...] = ()
    error: str = ""

    @classmethod
    def from_answer(cls, answer: dict) -> Repository:
        name = answer.get("name") or ""
        tags = tuple(Tag.from_answer(name, tag) for tag in answer.get("tags") or ())
        return cls(name, tags, answer.get("error") or "")


@dataclass(frozen=True)
class Pins:
    """What the kept releases name: snapshot tags by release (``images.keep_releases``: every tag ending
    ``-RELEASE``), and each lock's snapshot tags and digests, per repository."""

    releases: tuple[str, ...] = ()
    # (repository, tag) -> why ("release A (kolla-images.lock.yaml)").
    tags: dict[tuple[str, str], str] = field(default_factory=dict)
    # (repository, digest) -> why ("locked by kolla-images.lock.yaml").
    digests: dict[tuple[str, str], str] = field(default_factory=dict)

    def why(self, tag: Tag) -> str:
        """Why a kept release names ``tag``, or ""."""
        for release in self.releases:
            if tag.name.endswith(f"-{release}"):
                return f"release {release}"
        return self.tags.get((tag.repository, tag.name)) or self.digests.get((tag.repository, tag.digest)) or ""


def pins_from(releases: Iterable[str], locks: Iterable[Lock]) -> Pins:
    """The pins of ``images.keep_releases`` and of each lock given: its snapshot tags, and the tags still
    naming its locked digests."""
    tags: dict[tuple[str, str], str] = {}
    digests: dict[tuple[str, str], str] = {}
    for lock in locks:
        name = os.path.basename(lock.path) or "a lock"
        for entry in lock.entries:
            if entry.snapshot:
                tags.setdefault((entry.image.path, entry.snapshot), f"release {lock.release or entry.snapshot} ({name})")
            digests.setdefault((entry.image.path, entry.digest), f"locked by {name}")
    return Pins(tuple(releases), tags, digests)


@dataclass(frozen=True)
class Kept:
    """A tag that stays, and why: ``CURRENT``, ``NEWEST``, ``SAME_IMAGE`` (as ``like``), ``UNREAD``."""

    tag: Tag
    why: str
    like: str = ""


@dataclass(frozen=True)
class RepositoryPlan:
    """What happens in one repository: tags kept, tags deleted, the manifests deleted to that end."""

    name: str
    kept: tuple[Kept, ...] = ()
    deleted: tuple[Tag, ...] = ()
    manifests: tuple[str, ...] = ()
    status: str = KEPT
    message: str = ""
    # Left alone (outside the image list): the tags --all-repositories would delete here.
    would: tuple[Tag, ...] = ()


@dataclass(frozen=True)
class PrunePlan:
    """Every repository's plan, the bytes the deletes should free, and how to collect garbage."""

    repositories: tuple[RepositoryPlan, ...] = ()
    freed: int = 0
    # registry 2.8's --delete-untagged also deletes the platform manifests of a list that stays.
    delete_untagged: bool = True
    notes: tuple[str, ...] = field(default=())
    # The repositories outside the image list, left alone; each one's message says what
    # --all-repositories would delete there.
    others: tuple[RepositoryPlan, ...] = ()
    # How many other images each repository keeps (--keep): why the others go.
    keep: int = 1

    @property
    def deletes(self) -> list[tuple[str, str]]:
        """(repository, digest) of every manifest to delete."""
        return [(repo.name, digest) for repo in self.repositories for digest in repo.manifests]


def plan_prune(
    repositories: Iterable[Repository], current: Iterable[Image], keep: int, every: bool = False, pins: Pins | None = None
) -> PrunePlan:
    """Keep ``current``'s tags, every tag a kept release names (``pins``), and the ``keep`` newest other
    images per repository of the list (of every repository with ``every``); delete the rest."""
    current = list(current)
    pins = pins or Pins()
    wanted = {(image.path, image.tag) for image in current}
    listed = {image.path for image in current}
    # verify-registry's probe is the tool's own, pushed again on every check.
    repositories = [repo for repo in repositories if repo.name != PROBE_REPOSITORY]
    plans = tuple(plan_repository(repo, wanted, max(0, keep), pins) for repo in repositories if every or repo.name in listed)
    others = tuple(
        left_alone(plan_repository(repo, wanted, max(0, keep), pins))
        for repo in repositories
        if not (every or repo.name in listed)
    )
    # Garbage collection is registry-wide: what the other repositories hold stays in use too.
    staying = [kept.tag for plan in plans + others for kept in plan.kept]
    going = [tag for plan in plans for tag in plan.deleted]
    lists_stay = any(tag.children for tag in staying)
    notes = (
        ("untagged manifests kept: a manifest list stays (registry 2.8 would break it)",)
        if lists_stay
        else ()
    )
    return PrunePlan(plans, freed_bytes(going, staying), not lists_stay, notes, others, max(0, keep))


def left_alone(plan: RepositoryPlan) -> RepositoryPlan:
    """A repository outside the image list: every tag stays; the message says what --all-repositories would delete."""
    tags = [kept.tag for kept in plan.kept] + list(plan.deleted)
    would = f"; --all-repositories would delete {', '.join(tag.name for tag in plan.deleted)}" if plan.deleted else ""
    every = tuple(Kept(tag, OUTSIDE) for tag in tags)
    return RepositoryPlan(plan.name, every, status=LEFT_ALONE, message=OUTSIDE + would, would=plan.deleted)


def plan_repository(repo: Repository, wanted: set[tuple[str, str]], keep: int, pins: Pins | None = None) -> RepositoryPlan:
    """One repository: nothing goes when any of its tags could not be read (shared digests unknown)."""
    pins = pins or Pins()
    unread = [tag for tag in repo.tags if tag.error or not tag.digest]
    if repo.error or unread:
        reason = repo.error or f"{unread[0].name}: {unread[0].error or 'no digest'}"
        every = tuple(Kept(tag, UNREAD) for tag in repo.tags)
        return RepositoryPlan(repo.name, every, status=KEPT, message=f"nothing deleted: {reason}")
    kept: list[Kept] = []
    staying: dict[str, str] = {}  # digest -> the first tag that keeps it

    def stays(tag: Tag, why: str, like: str = "") -> None:
        kept.append(Kept(tag, why, like))
        for digest in tag.manifests:
            staying.setdefault(digest, tag.name)

    others: list[Tag] = []
    for tag in repo.tags:
        if (repo.name, tag.name) in wanted:
            stays(tag, CURRENT)
        elif pins.why(tag):
            # A kept release's tag: whatever --keep says, and counted for no other release.
            stays(tag, PINNED, pins.why(tag))
        else:
            others.append(tag)
    candidates: list[Tag] = []
    images = 0
    for tag in sorted(others, key=age, reverse=True):
        if tag.digest in staying:
            stays(tag, SAME_IMAGE, staying[tag.digest])
        elif tag.created is None:
            # No date to rank it by (a signature's or an attestation's manifest): not ours to call old.
            stays(tag, UNDATED)
        elif images < keep:
            images += 1
            stays(tag, NEWEST)
        else:
            candidates.append(tag)
    manifests = [d for tag in candidates for d in tag.manifests if d not in staying]
    status = TO_DELETE if candidates else KEPT
    return RepositoryPlan(repo.name, tuple(kept), tuple(candidates), tuple(dict.fromkeys(manifests)), status)


def age(tag: Tag) -> tuple:
    """Sort key, oldest first: tags without a created time before dated ones, then by tag."""
    return (tag.created is not None, tag.created or 0.0, natural(tag.name))


def natural(text: str) -> list[tuple[int, int, str]]:
    """``2024.10`` after ``2024.9``: digits compared as numbers, and after letters."""
    return [
        (1, int(part), "") if part.isdigit() else (0, 0, part) for part in re.split(r"(\d+)", text) if part
    ]


def created_seconds(text: str) -> float | None:
    """An image config's RFC 3339 ``created`` (nanoseconds, ``Z`` or an offset) as a POSIX time."""
    match = re.fullmatch(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:?\d\d)?", text.strip())
    if not match:
        return None
    moment, fraction, zone = match.groups()
    if zone in (None, "Z"):
        zone = "+00:00"
    elif ":" not in zone:
        zone = f"{zone[:3]}:{zone[3:]}"
    try:
        seconds = datetime.fromisoformat(moment + zone).timestamp()
    except ValueError:
        return None
    return seconds + (float(f"0.{fraction}") if fraction else 0.0)


def freed_bytes(going: list[Tag], staying: list[Tag]) -> int:
    """The blobs only deleted images use: what garbage collection should free (the store is shared)."""
    used = {digest for tag in staying for digest, _ in tag.blobs}
    freed = {digest: size for tag in going for digest, size in tag.blobs if digest not in used}
    return sum(freed.values())
