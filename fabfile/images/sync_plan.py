"""sync-images as a plan: which images the local registry lacks (from one round trip of registry
queries on the deployment host), and the job that copies them blob by blob, under the host's lock.

The copy is registry to registry over the HTTP API, run on the deployment host
by the standard-library program (``payload.copyrun``): blobs are streamed from
the upstream, or out of the uploaded archive, straight into the local registry;
Docker's own image store is not used.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from .. import payload
from ..model.context import StepContext
from ..model.facts import HostFacts
from ..model.inventory import ImageSettings
from ..model.outcome import FAILED
from ..model.plan import Done, Job, StepPlan
from ..registry.api import answer, local_base, query, with_access
from .archive import ArchiveError, Layout, archived_as, copy_spec
from .decide import decide_archive, decide_upstream
from .host_lock import locked
from .model import COPIED, TO_COPY, Archived, Image, Manifest, Synced, upstream_base
from .sync_report import STEP, Watch, table, totals, waited

ARCHIVE_NAME = "images.tar"
# What a copy tells of itself: blobs fetched from the source, mounted from another repository, bytes sent.
COUNTS = ("fetched", "mounted", "bytes", "waits", "waited")


@dataclass(frozen=True)
class SyncSource:
    """Where the images come from: the upstream registry (with its login), or an archive on this machine."""

    settings: ImageSettings
    archive: str = ""
    index: dict[str, Archived] | None = None
    password: str = ""
    workers: int = 4
    retries: int = 3
    # kolla-ansible's set: the hosts that pull each image, shown in the table.
    needed_by: dict[Image, tuple[str, ...]] | None = None

    @property
    def logins(self) -> list[list[str]]:
        """A private upstream's login, asked with in the program's request (never on a command line)."""
        return upstream_logins(self.settings, self.password)

    @property
    def name(self) -> str:
        return self.archive or upstream_base(self.settings)


def upstream_logins(settings: ImageSettings, password: str | None = None) -> list[list[str]]:
    """A private upstream's login ([[BASE, USER, PASSWORD]]), its password read from its file when not given."""
    if not settings.username:
        return []
    if password is None:
        with open(settings.password_file, encoding="utf-8") as secret:
            password = secret.read().strip()
    return [[upstream_base(settings), settings.username, password]]


def upstream_limits(settings: ImageSettings) -> dict:
    """The cap on requests in flight to the upstream, for a program's request."""
    return {"limits": {settings.registry: settings.max_requests}}


def manifests_query(images: list[Image], source: SyncSource, ctx: StepContext):
    """The section that asks both registries for every image's manifest (the local one first)."""
    queries = [[local_base(ctx), image.path, image.tag] for image in images]
    if not source.archive:
        queries += [[upstream_base(source.settings), image.path, image.tag] for image in images]
    request: dict = {"manifests": queries, **upstream_limits(source.settings)}
    if source.settings.platforms:
        # Compare the platform that is copied, whatever the deployment host's own.
        request["architecture"] = source.settings.platforms[0].split("/")[1]
    return query("manifests", ctx, request, source.logins)


def decisions(images: list[Image], source: SyncSource, facts: HostFacts) -> list[Synced] | str:
    """Every image's decision from the query's answers, or why there are none."""
    found = answer(facts, "manifests")
    answers = [Manifest.from_answer(item) for item in found.get("manifests") or []]
    if len(answers) != len(images) * (1 if source.archive else 2):
        return found.get("error") or "the registry query answered nothing"
    local, upstream = answers[: len(images)], answers[len(images) :]
    if source.archive:
        index = source.index or {}
        return [
            decide_archive(image, archived_as(image, index, source.settings.registry), held)
            for image, held in zip(images, local, strict=True)
        ]
    return [decide_upstream(*row) for row in zip(images, upstream, local, strict=True)]


def sync_planner(images: list[Image], source: SyncSource):
    """The planner: copy what the local registry lacks; the table of every image either way."""

    def plan_sync(facts: HostFacts, ctx: StepContext) -> StepPlan:
        plan = StepPlan(STEP)
        found = decisions(images, source, facts)
        if isinstance(found, str):
            plan.error = found
            return plan
        plan.data = {"images": [_row(item) for item in found]}
        todo = [item for item in found if item.status == TO_COPY]
        plan.detail = table(found, ctx.modes.check, source.needed_by)
        if todo:
            plan.jobs.append(copy_job(found, todo, source, ctx))
        else:
            plan.notes.append(totals(found))
            plan.error = _failures(found)
        return plan

    return plan_sync


def copy_job(found: list[Synced], todo: list[Synced], source: SyncSource, ctx: StepContext) -> Job:
    """The job that copies ``todo`` in one run of the program on the host; ``found`` is every image's row."""
    failed: dict[Image, str] = {}
    job: dict = {
        "target": local_base(ctx),
        "platforms": list(source.settings.platforms),
        "workers": max(1, source.workers),
        "retries": max(0, source.retries),
        **upstream_limits(source.settings),
    }
    uploads = []
    if source.archive:
        job["images"] = _archived(todo, source, failed)
        if job["images"]:
            # The run's private folder on the host: the program expands $UPLOADS there.
            job["archive"] = f"$UPLOADS/{ARCHIVE_NAME}"
            uploads.append((source.archive, ARCHIVE_NAME))
    else:
        job["source"] = upstream_base(source.settings)
        job["images"] = [{"repo": item.image.path, "tag": item.image.tag} for item in todo]
    request = with_access(ctx, {"copy": job}, source.logins)
    watch = Watch(ctx.host_name, [item for item in todo if item.image not in failed])

    def done(output: str) -> Done:
        answered = payload.last_json(output) or {}
        copied_ = {(a.get("repo"), a.get("tag")): a for a in answered.get("images") or []}
        results = [_after(item, copied_, failed) if item in todo else item for item in found]
        patience = waited(int(answered.get("waits") or 0), float(answered.get("waited") or 0))
        return Done(
            totals(results) + (f"; {source.name} {patience}" if patience else ""),
            failed=any(item.failed for item in results),
            detail=table(results, needed_by=source.needed_by),
            data={"images": [_row(item) for item in results], **{k: answered.get(k, 0) for k in COUNTS}},
        )

    return Job(
        summary=f"{totals(found)}, from {source.name} to {ctx.registry}",
        # Under the host's lock: no prune deletes nor collects while blobs and manifests go in.
        script=locked(payload.script(request, payload.COPY, "copy_answer")),
        done=done,
        diff="".join(f"+ {item.image.name} ({item.size} bytes) from {source.name}\n" for item in todo),
        uploads=uploads,
        on_line=watch.line,
        timeout=ctx.limits.command_timeout * len(todo),
    )


def _archived(todo: list[Synced], source: SyncSource, failed: dict[Image, str]) -> list[dict]:
    """Each archived image's manifests and blob members, read here; an image that cannot be read fails."""
    layout = Layout(source.archive)
    images = []
    for item in todo:
        try:
            spec = copy_spec(layout, (source.index or {})[item.source], item.image.tag, list(source.settings.platforms))
        except (ArchiveError, KeyError, ValueError, OSError) as error:
            failed[item.image] = f"archive: {error}"
            continue
        images.append({"repo": item.image.path, "tag": item.image.tag, **spec})
    return images


def _after(item: Synced, found: dict, failed: dict[Image, str]) -> Synced:
    """An image's row after the copy: what the program said of it."""
    if item.image in failed:
        return replace(item, status=FAILED, message=failed[item.image])
    answered = found.get((item.image.path, item.image.tag))
    if answered is None:
        return replace(item, status=FAILED, message="the copy said nothing of it")
    if answered.get("status") != COPIED:
        return replace(item, status=FAILED, message=answered.get("error") or "not copied")
    return replace(item, status=COPIED, digest=answered.get("digest") or item.digest)


def _failures(found: list[Synced]) -> str | None:
    failed = [item for item in found if item.failed]
    return f"{totals(found)}; {failed[0].image.name}: {failed[0].message}" if failed else None


def _row(item: Synced) -> dict:
    """An image as --json shows it."""
    return {"image": item.image.name, "status": item.status, "digest": item.digest, "size": item.size, "message": item.message}
