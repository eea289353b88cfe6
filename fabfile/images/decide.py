"""Decisions: which image to copy into the local registry, and which to skip."""

from __future__ import annotations

from ..model.outcome import FAILED
from .model import PRESENT, TO_COPY, Archived, Image, Manifest, Synced


def decide_upstream(image: Image, upstream: Manifest, local: Manifest) -> Synced:
    """Skip an image the local registry holds with the upstream's digest (or config digest)."""
    if upstream.status == 404:
        return Synced(image, FAILED, message="not found upstream (HTTP 404)")
    if upstream.exists and upstream.error:
        return Synced(image, FAILED, message=f"upstream: {upstream.error}")
    if local.exists and upstream.exists:
        if local.digest == upstream.digest:
            return Synced(image, PRESENT, local.digest, local.size, "same digest as upstream")
        # A push from Docker's image store may recompress layers, and a manifest list is
        # pushed as the one platform pulled: the same image under another manifest digest.
        if upstream.config and local.config == upstream.config:
            return Synced(image, PRESENT, local.digest, local.size, "same image as upstream (config digest)")
    elif local.exists:
        return Synced(image, PRESENT, local.digest, local.size, f"upstream not checked: {upstream.error}")
    if local.status not in (200, 404):
        return Synced(image, FAILED, message=f"local registry: {local.error or local.status}")
    reason = "differs from upstream" if local.exists else ""
    return Synced(image, TO_COPY, upstream.digest, upstream.size, reason)


def decide_archive(image: Image, archived: Archived | None, local: Manifest) -> Synced:
    """Skip an image the local registry holds with the archive's config digest (its image ID)."""
    if archived is None:
        return Synced(image, FAILED, message="not in the archive")
    if local.exists and local.config == archived.config:
        return Synced(image, PRESENT, local.digest, local.size, "same image as the archive's")
    if local.status not in (200, 404):
        return Synced(image, FAILED, message=f"local registry: {local.error or local.status}")
    reason = "differs from the archive's" if local.exists else ""
    return Synced(image, TO_COPY, "", archived.size, reason, source=archived.ref)
