"""Decisions: which image to copy into the local registry, and which to skip."""

from __future__ import annotations

from dataclasses import replace

from ..model.outcome import FAILED
from .lock import LockEntry
from .model import PRESENT, TO_COPY, TO_TAG, Archived, Image, Manifest, Synced

# A snapshot tag that would move: a release, once made, stays what it was.
CONFLICT = "a release's snapshot tag is never moved"


def decide_upstream(image: Image, upstream: Manifest, local: Manifest) -> Synced:
    """Skip an image the local registry holds with the upstream's digest (or config digest)."""
    if upstream.status == 404:
        return Synced(image, FAILED, message="not found upstream (HTTP 404)")
    if upstream.exists and upstream.error:
        return Synced(image, FAILED, message=f"upstream: {upstream.error}")
    held = {"platforms": local.platforms, "upstream_digest": upstream.digest}
    if local.exists and upstream.exists:
        if local.digest == upstream.digest:
            return Synced(image, PRESENT, local.digest, local.size, "same digest as upstream", **held)
        # A push from Docker's image store may recompress layers, and a manifest list is
        # pushed as the one platform pulled: the same image under another manifest digest.
        if upstream.config and local.config == upstream.config:
            return Synced(image, PRESENT, local.digest, local.size, "same image as upstream (config digest)", **held)
    elif local.exists:
        return Synced(image, PRESENT, local.digest, local.size, f"upstream not checked: {upstream.error}", platforms=local.platforms)
    if local.status not in (200, 404):
        return Synced(image, FAILED, message=f"local registry: {local.error or local.status}")
    reason = "differs from upstream" if local.exists else ""
    return Synced(image, TO_COPY, upstream.digest, upstream.size, reason)


def decide_archive(image: Image, archived: Archived | None, local: Manifest, locked: str = "") -> Synced:
    """Skip an image the local registry holds with the archive's config digest (its image ID), or at the
    ``locked`` digest (an export bundle read with its lock)."""
    if archived is None:
        return Synced(image, FAILED, message=f"locked digest {locked} is not in the archive" if locked else "not in the archive")
    if locked and local.exists and local.digest == locked:
        return Synced(image, PRESENT, local.digest, local.size, "the locked digest", platforms=local.platforms)
    if not locked and local.exists and local.config == archived.config:
        return Synced(image, PRESENT, local.digest, local.size, "same image as the archive's", platforms=local.platforms)
    if local.status not in (200, 404):
        return Synced(image, FAILED, message=f"local registry: {local.error or local.status}")
    reason = ("differs from the lock" if locked else "differs from the archive's") if local.exists else ""
    return Synced(image, TO_COPY, locked, archived.size, reason, source=archived.ref)


def decide_locked(image: Image, entry: LockEntry, upstream: Manifest, local: Manifest) -> Synced:
    """Skip an image the registry holds at the locked digest; else copy that digest, if upstream still has it."""
    if local.exists and local.digest == entry.digest:
        return Synced(image, PRESENT, local.digest, local.size, "the locked digest", platforms=local.platforms)
    if local.status not in (200, 404):
        return Synced(image, FAILED, message=f"local registry: {local.error or local.status}")
    if upstream.status == 404:
        return Synced(image, FAILED, message=f"locked digest {entry.reference} is no longer upstream (HTTP 404)")
    if not upstream.exists:
        return Synced(image, FAILED, message=f"upstream: {upstream.error or upstream.status}")
    reason = f"differs from the lock ({local.digest})" if local.exists else "the locked digest"
    return Synced(image, TO_COPY, entry.digest, upstream.size, reason, upstream_digest=entry.upstream_digest)


def decide_snapshot(item: Synced, snapshot: str, held: Manifest, known: bool) -> Synced:
    """The image's release tag: pushed with it, or alone when the registry holds the image already; a
    conflict (FAILED, ``conflict`` in the message) when it names another digest than the tag will, which
    ``known`` says the planner can tell (no platforms chosen, or a locked digest)."""
    if item.failed:
        return item
    if held.status not in (200, 404):
        return replace(item, status=FAILED, message=f"local registry: {held.error or held.status}")
    # The digest the tag will name is known when the registry holds it, or (``known``) from the upstream or
    # the lock; a docker save archive's is made by the push: the copy program checks then.
    if held.exists and item.digest and held.digest != item.digest and (item.status == PRESENT or known):
        return replace(item, status=FAILED, message=f"{CONFLICT}: {snapshot} already names {held.digest}")
    if item.status == PRESENT and not held.exists:
        return replace(item, status=TO_TAG, snapshot=snapshot, message=_also(item.message, f"to tag {snapshot}"))
    return replace(item, snapshot=snapshot)


def _also(first: str, then: str) -> str:
    return f"{first}; {then}" if first else then
