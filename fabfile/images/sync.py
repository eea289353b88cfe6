"""Syncing images into the local registry on the deployment host: query, decide, copy, read back.

The copy is registry to registry over the HTTP API, run on the deployment host
by the stdlib helper (remote/copyrun.py): blobs are streamed from the upstream,
or out of the uploaded archive, straight into the local registry; Docker's own
image store is not used.
"""

from __future__ import annotations

import os
import tarfile
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from ..engine.hostrun import HostRun, RemoteError
from ..engine.result import FAILED, print_line
from ..inventory import ImageSettings
from ..remote.api import local_base, query_registry
from ..remote.marks import MARK
from .archive import ArchiveError, Layout, archived_as, copy_spec
from .decide import decide_archive, decide_upstream
from .model import COPIED, TO_COPY, Archived, Image, Manifest, Synced, upstream_base
from .table import STEP, decimal_size, image_done, progress, transfer

SHOW_EVERY = 5  # seconds: the most a long copy stays silent


class Syncer:
    """One sync on the deployment host: query, decide, copy (blobs ``workers`` at once), read back."""

    def __init__(
        self,
        run: HostRun,
        settings: ImageSettings,
        archive: str,
        index: dict[str, Archived],
        workers: int,
        retries: int,
        upstream_password: str = "",
    ) -> None:
        self.run = run
        # A private upstream's login: the helper asks with it (in its request, never on a command line).
        self.upstream_login = (
            [[upstream_base(settings), settings.username, upstream_password]] if settings.username else []
        )
        self.settings = settings
        self.archive = archive
        self.index = index
        self.workers = max(1, workers)
        self.retries = max(0, retries)
        self.local = run.ctx.registry

    def plan(self, images: list[Image]) -> list[Synced]:
        """Every image's decision, from one round trip of registry queries."""
        queries = [[local_base(self.run.ctx), image.path, image.tag] for image in images]
        if not self.archive:
            queries += [[upstream_base(self.settings), image.path, image.tag] for image in images]
        request: dict = {"manifests": queries}
        if self.settings.platforms:
            # Compare the platform that is copied, whatever the deployment host's own.
            request["architecture"] = self.settings.platforms[0].split("/")[1]
        found = query_registry(self.run, request, self.upstream_login)["manifests"]
        answers = [Manifest.from_answer(answer) for answer in found]
        local, upstream = answers[: len(images)], answers[len(images) :]
        if self.archive:
            return [
                decide_archive(image, archived_as(image, self.index, self.settings.registry), found)
                for image, found in zip(images, local, strict=True)
            ]
        return [decide_upstream(*row) for row in zip(images, upstream, local, strict=True)]

    def copy(self, plan: list[Synced]) -> list[Synced]:
        """Copy what the plan says, in one run of the helper (in check mode, nothing)."""
        todo = [item for item in plan if item.status == TO_COPY]
        if not todo or self.run.check:
            return plan
        job = {
            "target": local_base(self.run.ctx),
            "platforms": list(self.settings.platforms),
            "workers": self.workers,
            "retries": self.retries,
        }
        failed: dict[Image, str] = {}
        try:
            job["images"] = self.archived(todo, failed, job) if self.archive else self.upstream(todo, job)
            watch = Watch(self.run.host.name, [item for item in todo if item.image not in failed])
            limit = self.run.ctx.limits.command_timeout * len(todo)
            answer = query_registry(self.run, {"copy": job}, self.upstream_login, True, watch.line, limit)
        except (RemoteError, ArchiveError, OSError) as error:
            return [replace(item, status=FAILED, message=str(error)) if item in todo else item for item in plan]
        found = {(a["repo"], a["tag"]): a for a in answer.get("images") or []}
        results = [copied(item, found, failed) if item in todo else item for item in plan]
        return self.read_back(results)

    def upstream(self, todo: list[Synced], job: dict) -> list[dict]:
        job["source"] = upstream_base(self.settings)
        return [{"repo": item.image.path, "tag": item.image.tag} for item in todo]

    def archived(self, todo: list[Synced], failed: dict[Image, str], job: dict) -> list[dict]:
        """Each image's manifests and blob members, read here; then the archive goes to the host."""
        layout = Layout(self.archive)
        images = []
        for item in todo:
            try:
                spec = copy_spec(layout, self.index[item.source], item.image.tag, list(self.settings.platforms))
            except (ArchiveError, KeyError, ValueError, OSError) as error:
                failed[item.image] = f"archive: {error}"
                continue
            images.append({"repo": item.image.path, "tag": item.image.tag, **spec})
        if images:
            job["archive"] = self.upload()
        return images

    def upload(self) -> str:
        """The archive, uploaded to the host (a folder as a tar); its path there."""
        path, packed = self.archive, ""
        if os.path.isdir(path):
            packed = path = pack(path)
        try:
            size = Path(path).stat().st_size
            shown: set[int] = set()

            def uploaded(sent: int, total: int) -> None:
                tenth = sent * 10 // max(total, 1)
                if tenth not in shown:
                    shown.add(tenth)
                    what = f"uploading {self.archive}: {decimal_size(sent)}/{decimal_size(total)}"
                    print_line(f"{self.run.host.name} | {STEP} | {what}")

            uploaded(0, size)
            return self.run.upload(path, "images.tar", uploaded)
        finally:
            if packed:
                os.unlink(packed)

    def read_back(self, results: list[Synced]) -> list[Synced]:
        """The digest and size the local registry now has for every copied image."""
        copied_ = [item for item in results if item.status == COPIED]
        if not copied_:
            return results
        queries = [[local_base(self.run.ctx), item.image.path, item.image.tag] for item in copied_]
        answers = query_registry(self.run, {"manifests": queries})["manifests"]
        found = {item.image: Manifest.from_answer(a) for item, a in zip(copied_, answers, strict=True)}
        return [read_back_one(item, found.get(item.image)) for item in results]


def pack(folder: str) -> str:
    """An OCI layout folder as an uncompressed tar in a temporary file (the caller removes it)."""
    handle, path = tempfile.mkstemp(suffix=".tar", prefix="kolla-registry-")
    os.close(handle)
    with tarfile.open(path, "w") as archive:
        for name in sorted(os.listdir(folder)):
            archive.add(os.path.join(folder, name), arcname=name)
    return path


def copied(item: Synced, found: dict, failed: dict[Image, str]) -> Synced:
    """An image's row after the copy: what the helper said of it."""
    if item.image in failed:
        return replace(item, status=FAILED, message=failed[item.image])
    answer = found.get((item.image.path, item.image.tag))
    if answer is None:
        return replace(item, status=FAILED, message="the copy said nothing of it")
    if answer.get("status") != COPIED:
        return replace(item, status=FAILED, message=answer.get("error") or "not copied")
    return replace(item, status=COPIED)


class Watch:
    """The helper's marks as they come, shown as progress lines: bytes, rate, ETA, images done."""

    def __init__(self, host: str, todo: list[Synced]) -> None:
        self.host = host
        self.items = {item.image.name: item for item in todo}
        self.done = self.sent = self.size = 0
        self.started = self.shown = time.monotonic()

    def line(self, text: str) -> None:
        if not text.startswith(f"{MARK} "):
            return
        word, _, rest = text[len(MARK) + 1 :].partition(" ")
        fields = rest.split(" ", 2)
        if word == "plan":
            self.size = int(fields[0])
        elif word == "progress":
            self.sent = int(fields[0])
            # Each image's line shows the bytes too: a line of bytes alone only between images.
            if time.monotonic() - self.shown >= SHOW_EVERY:
                print_line(self.show())
        elif word == "image" and len(fields) > 1:
            self.done += 1
            item = self.items.get(fields[1])
            if item is not None:
                status = COPIED if fields[0] == COPIED else FAILED
                message = fields[2] if status == FAILED and len(fields) > 2 else ""
                print_line(self.show(image_done(replace(item, status=status, message=message))))

    def show(self, what: str = "") -> str:
        self.shown = time.monotonic()
        elapsed = self.shown - self.started
        return progress(self.host, self.done, len(self.items), transfer(self.sent, self.size, elapsed), what)


def read_back_one(item: Synced, found: Manifest | None) -> Synced:
    """A copied image's row with the local registry's digest and size; failed if it is not there."""
    if found is None:
        return item
    if not found.exists:
        return replace(
            item, status=FAILED, message=f"pushed, but the registry does not list it: {found.error}"
        )
    return replace(item, digest=found.digest, size=found.size or item.size)
