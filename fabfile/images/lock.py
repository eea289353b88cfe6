"""The lock: for every image a sync copied or found present, the digest the registry holds, its upstream
reference, its platforms and when; ``sync-images --locked LOCK`` copies exactly those digests again.

A YAML file on the operator's machine, sorted and diff-friendly: an image whose
digest did not change keeps its time, so a sync that changed nothing leaves
the file as it was. Written atomically (a temporary file beside it, renamed
over it). Every value is checked when a lock is read (``lock_read``), since
it names what goes into a registry every node pulls from.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

import yaml

from .model import COPIED, EXPORTED, PRESENT, TAGGED, Image

# Beside the inventory (or the --images file) unless images.lock says where.
DEFAULT_NAME = "kolla-images.lock.yaml"
VERSION = 1
HEADER = (
    "# kolla-registry lock: the digests `fab sync-images` copied into the registry, each with its upstream\n"
    "# reference, platforms and when. `fab sync-images --locked THIS-FILE` copies exactly these digests again\n"
    "# (never a newer image under the same tag); `fab export-images --locked THIS-FILE` bundles them.\n"
)
LOCKED = (COPIED, PRESENT, TAGGED, EXPORTED)


@dataclass(frozen=True)
class LockEntry:
    """One image as a sync left it in the registry."""

    image: Image
    upstream: str
    digest: str
    # The upstream's manifest digest when it is not the registry's (only some platforms were copied).
    upstream_digest: str = ""
    platforms: tuple[str, ...] = ()
    synced: str = ""
    # Its release's snapshot tag, when the sync made one.
    snapshot: str = ""

    @property
    def reference(self) -> str:
        """What a locked copy fetches upstream: the upstream's own digest, never the tag."""
        return self.upstream_digest or self.digest


@dataclass(frozen=True)
class Lock:
    """A whole lock: the upstream it was synced from, the platforms chosen, the release, every image."""

    registry: str
    insecure: bool = False
    entries: tuple[LockEntry, ...] = ()
    platforms: tuple[str, ...] = ()
    release: str = ""
    path: str = field(default="", compare=False)

    def entry(self, image: Image) -> LockEntry | None:
        return next((entry for entry in self.entries if entry.image == image), None)

    @property
    def images(self) -> list[Image]:
        return [entry.image for entry in self.entries]


def render_lock(lock: Lock) -> str:
    """The lock as its file holds it: the header, then YAML with sorted keys and images sorted by name."""
    entries = sorted(lock.entries, key=lambda entry: entry.image.name)
    document: dict = {
        "kolla_registry_lock": VERSION,
        "registry": lock.registry,
        "insecure": lock.insecure,
        "images": [_entry_document(entry) for entry in entries],
    }
    if lock.platforms:
        document["platforms"] = list(lock.platforms)
    if lock.release:
        document["release"] = lock.release
    return HEADER + yaml.safe_dump(document, sort_keys=True, default_flow_style=False, width=200)


def _entry_document(entry: LockEntry) -> dict:
    found = {
        "image": entry.image.name,
        "upstream": entry.upstream,
        "digest": entry.digest,
        "platforms": list(entry.platforms),
        "synced": entry.synced,
    }
    if entry.upstream_digest:
        found["upstream_digest"] = entry.upstream_digest
    if entry.snapshot:
        found["snapshot"] = entry.snapshot
    return found


def write_lock(path: str, lock: Lock) -> None:
    """Replace ``path`` with ``lock`` atomically: a temporary file beside it, flushed, then renamed over it."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", dir=folder)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(render_lock(lock))
            out.flush()
            os.fsync(out.fileno())
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def lock_from_rows(
    rows: Iterable[Mapping],
    upstream: str,
    insecure: bool,
    platforms: Iterable[str],
    release: str,
    now: str,
    previous: Lock | None = None,
) -> Lock:
    """The lock of a sync's rows (``--json``'s images): each image copied, found present or tagged, with the
    time of ``previous``'s entry when its digest is the same, else ``now``."""
    entries = []
    for row in rows:
        if row.get("status") not in LOCKED or not row.get("digest"):
            continue
        path, _, tag = str(row["image"]).rpartition(":")
        image = Image(path, tag)
        other = row.get("upstream_digest") or ""
        entry = LockEntry(
            image=image,
            upstream=f"{upstream}/{image.name}",
            digest=row["digest"],
            upstream_digest=other if other != row["digest"] else "",
            platforms=tuple(sorted(row.get("platforms") or ())),
            synced=now,
            snapshot=row.get("snapshot") or "",
        )
        before = previous.entry(image) if previous else None
        if before is not None and before.digest == entry.digest:
            entry = replace(entry, synced=before.synced or now, platforms=entry.platforms or before.platforms)
        entries.append(entry)
    entries.sort(key=lambda entry: entry.image.name)
    return Lock(upstream, insecure, tuple(entries), tuple(platforms), release)
