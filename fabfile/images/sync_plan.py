"""sync-images as a plan: which images the local registry lacks (from one round trip of registry
queries on the deployment host), and the job that copies them blob by blob (``sync_job``).

The copy is registry to registry over the HTTP API, run on the deployment host
by the standard-library program (``payload.copyrun``): blobs are streamed from
the upstream, or out of the uploaded archive, straight into the local registry's
storage through its writer (``registry.writer``: the instances nodes reach are
read-only); Docker's own image store is not used. With a lock (``--locked``) each image is
asked of the upstream, and copied, by its locked digest, never by its tag; with
a release each image gets a second tag, ``TAG-RELEASE``, which no later sync
moves.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from ..model.context import StepContext
from ..model.facts import HostFacts
from ..model.inventory import ImageSettings
from ..model.plan import StepPlan
from ..registry.api import answer, local_base, query
from .archive import archived_as
from .decide import CONFLICT, decide_archive, decide_locked, decide_snapshot, decide_upstream
from .lock import Lock
from .model import (
    TO_COPY,
    TO_TAG,
    Archived,
    Image,
    Manifest,
    Synced,
    upstream_base,
    upstream_limits,
    upstream_logins,
)
from .sync_job import copy_job, failures, row
from .sync_report import STEP, table, totals


@dataclass(frozen=True)
class SyncSource:
    """Where the images come from: the upstream registry (with its login), or an archive on this machine;
    the lock it follows, and the release it tags."""

    settings: ImageSettings
    archive: str = ""
    index: dict[str, Archived] | None = None
    password: str = ""
    workers: int = 4
    retries: int = 3
    # kolla-ansible's set: the hosts that pull each image, shown in the table.
    needed_by: dict[Image, tuple[str, ...]] | None = None
    # --locked: exactly these digests, fetched by digest.
    lock: Lock | None = None
    # Each image tagged TAG-RELEASE too (snapshot tags, never moved).
    release: str = ""

    @property
    def logins(self) -> list[list[str]]:
        """A private upstream's login, asked with in the program's request (never on a command line)."""
        return upstream_logins(self.settings, self.password)

    @property
    def name(self) -> str:
        return self.archive or upstream_base(self.settings)

    @property
    def platforms(self) -> tuple[str, ...]:
        """The platforms copied of a manifest list: the lock's (so that its digests come out again), else the list's."""
        return self.lock.platforms if self.lock else self.settings.platforms

    def snapshot(self, image: Image) -> str:
        """``image``'s snapshot tag in this sync's release ("" without one)."""
        return snapshot_tag(image.tag, self.release) if self.release else ""

    def upstream_reference(self, image: Image) -> str:
        """What the upstream is asked for: the locked digest, else the tag."""
        entry = self.lock.entry(image) if self.lock else None
        return entry.reference if entry else image.tag


def snapshot_tag(tag: str, release: str) -> str:
    """``2025.1-ubuntu-noble-2025.1-r3``: the image's tag, then the release."""
    return f"{tag}-{release}"


def manifests_query(images: list[Image], source: SyncSource, ctx: StepContext):
    """The section that asks the registries for every image's manifest: the local one first (with its
    platforms, for the lock), then the upstream's (by locked digest), then the local snapshot tags."""
    local = local_base(ctx)
    queries = [[local, image.path, image.tag, "platforms"] for image in images]
    if not source.archive:
        base = upstream_base(source.settings)
        queries += [[base, image.path, source.upstream_reference(image)] for image in images]
    if source.release:
        queries += [[local, image.path, source.snapshot(image)] for image in images]
    request: dict = {"manifests": queries, **upstream_limits(source.settings)}
    if source.platforms:
        # Compare the platform that is copied, whatever the deployment host's own.
        request["architecture"] = source.platforms[0].split("/")[1]
    return query("manifests", ctx, request, source.logins)


def decisions(images: list[Image], source: SyncSource, facts: HostFacts) -> list[Synced] | str:
    """Every image's decision from the query's answers, or why there are none."""
    found = answer(facts, "manifests")
    answers = [Manifest.from_answer(item) for item in found.get("manifests") or []]
    parts = (1 if source.archive else 2) + (1 if source.release else 0)
    if len(answers) != len(images) * parts:
        return found.get("error") or "the registry query answered nothing"
    local = answers[: len(images)]
    upstream = [] if source.archive else answers[len(images) : 2 * len(images)]
    decided = _decide_archived(images, source, local) if source.archive else _decide_upstream(images, source, upstream, local)
    if not source.release:
        return decided
    # The digest the tag will name is known unless only some platforms of a list are copied.
    known = bool(source.lock) or not source.platforms
    snapshots = answers[-len(images) :]
    return [decide_snapshot(item, source.snapshot(item.image), held, known) for item, held in zip(decided, snapshots, strict=True)]


def _decide_upstream(images: list[Image], source: SyncSource, upstream: list[Manifest], local: list[Manifest]) -> list[Synced]:
    if source.lock is None:
        return [decide_upstream(*item) for item in zip(images, upstream, local, strict=True)]
    return [decide_locked(image, source.lock.entry(image), up, held) for image, up, held in zip(images, upstream, local, strict=True)]


def _decide_archived(images: list[Image], source: SyncSource, local: list[Manifest]) -> list[Synced]:
    index = source.index or {}
    if source.lock is None:
        return [decide_archive(image, archived_as(image, index, source.settings.registry), held) for image, held in zip(images, local, strict=True)]
    by_digest = {json.loads(item.descriptor).get("digest"): item for item in index.values() if item.descriptor}
    return [
        decide_archive(image, by_digest.get(source.lock.entry(image).digest), held, source.lock.entry(image).digest)
        for image, held in zip(images, local, strict=True)
    ]


def sync_planner(images: list[Image], source: SyncSource):
    """The planner: copy what the local registry lacks, tag what it holds; the table of every image either way."""

    def plan_sync(facts: HostFacts, ctx: StepContext) -> StepPlan:
        plan = StepPlan(STEP)
        found = decisions(images, source, facts)
        if isinstance(found, str):
            plan.error = found
            return plan
        plan.data = {"images": [row(item) for item in found]}
        plan.detail = table(found, ctx.modes.check, source.needed_by)
        conflicts = [item for item in found if item.failed and item.message.startswith(CONFLICT)]
        if conflicts:
            # A release that would end up half moved is not started: nothing is copied nor tagged.
            named = ", ".join(f"{item.image.path}:{item.message.split(': ', 1)[1]}" for item in conflicts)
            plan.error = f"release {source.release}: refused, {CONFLICT}: {named}; sync under a new release name"
            return plan
        todo = [item for item in found if item.status in (TO_COPY, TO_TAG)]
        if todo:
            plan.jobs.append(copy_job(found, todo, source, ctx))
        else:
            plan.notes.append(totals(found))
            plan.error = failures(found, bool(source.lock))
        return plan

    return plan_sync
