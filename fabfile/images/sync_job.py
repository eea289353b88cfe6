"""The copy job of sync-images: one run of the copy program on the deployment host, under the host's lock,
for every image to copy or to tag; and each image's row from what the program said of it."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from .. import payload
from ..model.context import StepContext
from ..model.outcome import FAILED
from ..model.plan import Done, Job
from ..registry import writer
from ..registry.api import local_base, with_access
from .archive import ArchiveError, Layout, copy_spec
from .host_lock import locked
from .model import COPIED, TAGGED, TO_TAG, Image, Synced, upstream_base
from .sync_report import Watch, table, totals, waited

if TYPE_CHECKING:  # the source's class is sync_plan's, which imports this module
    from .sync_plan import SyncSource

ARCHIVE_NAME = "images.tar"
# What a copy tells of itself: blobs fetched from the source, mounted from another repository, bytes sent,
# and the upstream's 429 answers waited out.
COUNTS = ("fetched", "mounted", "bytes", "waits", "waited")


def copy_job(found: list[Synced], todo: list[Synced], source: SyncSource, ctx: StepContext) -> Job:
    """The job that copies (or tags) ``todo`` in one run of the program on the host; ``found`` is every image's row."""
    failed: dict[Image, str] = {}
    job: dict = {
        "target": local_base(ctx),
        # Written through the writer only root on the deployment host reaches: what nodes reach is read-only.
        "socket": writer.WRITER_SOCKET,
        "platforms": list(source.platforms),
        "workers": max(1, source.workers),
        "retries": max(0, source.retries),
        "limits": {source.settings.registry: source.settings.max_requests},
    }
    tags = [_tagged(item) for item in todo if item.status == TO_TAG]
    copies = [item for item in todo if item.status != TO_TAG]
    uploads = []
    if source.archive:
        job["images"] = tags + _archived(copies, source, failed)
        if len(job["images"]) > len(tags):
            # The run's private folder on the host: the program expands $UPLOADS there.
            job["archive"] = f"$UPLOADS/{ARCHIVE_NAME}"
            uploads.append((source.archive, ARCHIVE_NAME))
    else:
        job["source"] = upstream_base(source.settings)
        job["images"] = tags + [_upstream(item, source) for item in copies]
    request = with_access(ctx, {"copy": job}, source.logins)
    watch = Watch(ctx.host_name, [item for item in todo if item.image not in failed])

    def done(output: str) -> Done:
        answered = payload.last_json(output) or {}
        said = {(a.get("repo"), a.get("tag")): a for a in answered.get("images") or []}
        results = [_after(item, said, failed) if item in todo else item for item in found]
        patience = waited(int(answered.get("waits") or 0), float(answered.get("waited") or 0))
        message = failures(results, bool(source.lock)) or totals(results)
        return Done(
            message + (f"; {source.name} {patience}" if patience else ""),
            failed=any(item.failed for item in results),
            detail=table(results, needed_by=source.needed_by),
            data={"images": [row(item) for item in results], **{k: answered.get(k, 0) for k in COUNTS}},
        )

    return Job(
        summary=f"{totals(found)}, from {source.name} to {ctx.registry}",
        # Under the host's lock: no prune deletes nor collects while blobs and manifests go in.
        script=locked(writer.with_writer(ctx, payload.script(request, payload.COPY, "copy_answer"), ctx.limits.docker_wait)),
        done=done,
        diff="".join(_diff_line(item, source) for item in todo),
        uploads=uploads,
        on_line=watch.line,
        timeout=ctx.limits.command_timeout * len(todo),
    )


def _diff_line(item: Synced, source: SyncSource) -> str:
    if item.status == TO_TAG:
        return f"+ {item.image.path}:{item.snapshot} (tag of {item.digest})\n"
    return f"+ {item.image.name} ({item.size} bytes) from {source.name}" + (f", tagged {item.snapshot}" if item.snapshot else "") + "\n"


def _tagged(item: Synced) -> dict:
    """An image the registry holds, only its snapshot tag to push."""
    return {"repo": item.image.path, "tag": item.image.tag, "present": item.digest, "snapshot": item.snapshot}


def _upstream(item: Synced, source: SyncSource) -> dict:
    """An image to copy from the upstream: by its locked digest (the tag then checked to name the locked
    digest, where the copy gives that digest back), and its snapshot tag."""
    image: dict = {"repo": item.image.path, "tag": item.image.tag}
    entry = source.lock.entry(item.image) if source.lock else None
    if entry is not None:
        image["reference"] = entry.reference
        if not entry.upstream_digest or source.lock.platforms:
            image["expect"] = entry.digest
    if item.snapshot:
        image["snapshot"] = item.snapshot
    return image


def _archived(todo: list[Synced], source: SyncSource, failed: dict[Image, str]) -> list[dict]:
    """Each archived image's manifests and blob members, read here; an image that cannot be read fails."""
    layout = Layout(source.archive)
    images = []
    for item in todo:
        try:
            spec = copy_spec(layout, (source.index or {})[item.source], item.image.tag, list(source.platforms))
        except (ArchiveError, KeyError, ValueError, OSError) as error:
            failed[item.image] = f"archive: {error}"
            continue
        extra = {"snapshot": item.snapshot} if item.snapshot else {}
        if source.lock is not None:
            extra["expect"] = item.digest
        images.append({"repo": item.image.path, "tag": item.image.tag, **spec, **extra})
    return images


def _after(item: Synced, found: dict, failed: dict[Image, str]) -> Synced:
    """An image's row after the copy: what the program said of it."""
    if item.image in failed:
        return replace(item, status=FAILED, message=failed[item.image])
    answered = found.get((item.image.path, item.image.tag))
    if answered is None:
        return replace(item, status=FAILED, message="the copy said nothing of it")
    if answered.get("status") not in (COPIED, TAGGED):
        return replace(item, status=FAILED, message=answered.get("error") or "not copied")
    digest = answered.get("digest") or item.digest
    return replace(
        item,
        status=answered["status"],
        digest=digest,
        upstream_digest=answered.get("source") or item.upstream_digest,
        platforms=tuple(answered.get("platforms") or item.platforms),
        message=f"tagged {item.snapshot}" if answered["status"] == TAGGED else item.message,
    )


def failures(found: list[Synced], locked_sync: bool = False) -> str | None:
    """The row's message when an image failed: every locked digest gone upstream named, else the first failure."""
    failed = [item for item in found if item.failed]
    if not failed:
        return None
    gone = [item.image.name for item in failed if "no longer upstream" in item.message]
    if locked_sync and gone:
        return f"{totals(found)}; locked digests no longer upstream: {', '.join(gone)}"
    return f"{totals(found)}; {failed[0].image.name}: {failed[0].message}"


def row(item: Synced) -> dict:
    """An image as --json shows it (and as the lock is written from)."""
    found = {"image": item.image.name, "status": item.status, "digest": item.digest, "size": item.size, "message": item.message}
    found.update(upstream_digest=item.upstream_digest, platforms=list(item.platforms), snapshot=item.snapshot)
    return found
