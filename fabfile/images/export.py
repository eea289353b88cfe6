"""export-images as a plan: one run of the export program on this machine, from the upstream into an OCI image
layout (folder or tar) that carries the images to a site without internet; and the lock put into it after.

The bundle names each image as ``sync-images --archive`` finds it (its upstream
reference, and its release's snapshot tag), holds each blob once, and resumes:
what it holds and hashes right is kept. A Docker-typed manifest is named through
a small OCI index wrapping it, for OCI readers such as skopeo; the import unwraps
it and pushes the upstream's manifest (see payload/ocilayout.py). With a lock, each image is fetched by
its locked digest and the bundle holds exactly those; without one, the image
list as the upstream tags it now, and the bundle's lock says which digests
those were.
"""

from __future__ import annotations

import io
import os
import tarfile
import tempfile
from dataclasses import dataclass, field

from .. import payload
from ..model.context import StepContext
from ..model.facts import HostFacts
from ..model.inventory import ImageSettings
from ..model.outcome import FAILED
from ..model.plan import Done, Job, StepPlan
from .lock import DEFAULT_NAME, Lock, render_lock
from .model import EXPORTED, TO_EXPORT, Image, Synced, upstream_base
from .sync_job import row
from .sync_report import Watch, table, totals, waited

STEP = "export-images"
COUNTS = ("fetched", "kept", "bytes", "waits", "waited")


@dataclass(frozen=True)
class Bundle:
    """Where the images go (a folder, or a tar), what they are, and where they come from."""

    path: str
    tar: bool
    settings: ImageSettings
    images: tuple[Image, ...]
    lock: Lock | None = None
    password: str = field(default="", repr=False)
    workers: int = 4
    retries: int = 3

    def names(self, image: Image) -> list[str]:
        """The names the bundle gives ``image``: its upstream reference, and its release's snapshot tag."""
        names = [image.at(self.settings.registry)]
        entry = self.lock.entry(image) if self.lock else None
        if entry is not None and entry.snapshot:
            names.append(Image(image.path, entry.snapshot).at(self.settings.registry))
        return names

    def request_image(self, image: Image) -> dict:
        found: dict = {"repo": image.path, "tag": image.tag, "names": self.names(image)}
        entry = self.lock.entry(image) if self.lock else None
        if entry is not None:
            found["reference"] = entry.reference
            if not entry.upstream_digest or self.lock.platforms:
                found["expect"] = entry.digest
        return found


def export_planner(bundle: Bundle, logins: list[list[str]]):
    """The planner: export every image of ``bundle`` (the table shows each; --check says what would go)."""

    def plan_export(facts: HostFacts, ctx: StepContext) -> StepPlan:
        plan = StepPlan(STEP)
        todo = [Synced(image, TO_EXPORT) for image in bundle.images]
        plan.detail = table(todo, ctx.modes.check, step=STEP) if ctx.modes.check else ""
        plan.data = {"images": [row(item) for item in todo]}
        plan.jobs.append(export_job(bundle, todo, logins, ctx))
        return plan

    return plan_export


def export_job(bundle: Bundle, todo: list[Synced], logins: list[list[str]], ctx: StepContext) -> Job:
    platforms = bundle.lock.platforms if bundle.lock else bundle.settings.platforms
    job = {
        "to": bundle.path,
        "tar": bundle.tar,
        "source": upstream_base(bundle.settings),
        "images": [bundle.request_image(image) for image in bundle.images],
        "platforms": list(platforms),
        "workers": max(1, bundle.workers),
        "retries": max(0, bundle.retries),
        "limits": {bundle.settings.registry: bundle.settings.max_requests},
    }
    request = {"export": job, **({"logins": logins} if logins else {})}
    watch = Watch(ctx.host_name, todo, STEP)
    where = f"{bundle.path} ({'tar' if bundle.tar else 'folder'})"

    def done(output: str) -> Done:
        answered = payload.last_json(output) or {}
        said = {(a.get("repo"), a.get("tag")): a for a in answered.get("images") or []}
        results = [_after(item, said) for item in todo]
        failed = [item for item in results if item.failed]
        patience = waited(int(answered.get("waits") or 0), float(answered.get("waited") or 0))
        kept = int(answered.get("kept") or 0)
        message = f"{totals(results)} into {where}" + (f", {kept} blobs already there" if kept else "")
        message += f"; {failed[0].image.name}: {failed[0].message}" if failed else ""
        return Done(
            message + (f"; {upstream_base(bundle.settings)} {patience}" if patience else ""),
            failed=bool(failed),
            detail=table(results, step=STEP),
            data={"images": [row(item) for item in results], **{k: answered.get(k, 0) for k in COUNTS}},
        )

    return Job(
        summary=f"{len(todo)} images from {upstream_base(bundle.settings)} into {where}",
        script=payload.script(request, payload.EXPORT, "export_answer"),
        done=done,
        diff="".join(f"+ {name}\n" for image in bundle.images for name in bundle.names(image)),
        on_line=watch.line,
        timeout=ctx.limits.command_timeout * max(1, len(todo)),
    )


def _after(item: Synced, found: dict) -> Synced:
    answered = found.get((item.image.path, item.image.tag))
    if answered is None:
        return Synced(item.image, FAILED, message="the export said nothing of it")
    if answered.get("status") != EXPORTED:
        return Synced(item.image, FAILED, message=answered.get("error") or "not exported")
    return Synced(
        item.image,
        EXPORTED,
        answered.get("digest") or "",
        int(answered.get("size") or 0),
        upstream_digest=answered.get("source") or "",
        platforms=tuple(answered.get("platforms") or ()),
    )


def put_lock(path: str, tar: bool, lock: Lock) -> None:
    """The lock into the bundle: a file of the folder replaced whole, or a member appended to the tar (a
    reader takes a name's last member)."""
    text = render_lock(lock).encode()
    if tar:
        with tarfile.open(path, "a") as bundle:
            info = tarfile.TarInfo(DEFAULT_NAME)
            info.size, info.mode = len(text), 0o644
            bundle.addfile(info, io.BytesIO(text))
        return
    handle, temporary = tempfile.mkstemp(prefix=f".{DEFAULT_NAME}.", dir=path)
    with os.fdopen(handle, "wb") as out:
        out.write(text)
        out.flush()
        os.fsync(out.fileno())
    os.chmod(temporary, 0o644)
    os.replace(temporary, os.path.join(path, DEFAULT_NAME))
