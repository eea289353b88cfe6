"""Snapshot tags in the local registry: a release's second tag of an image, never moved once made.

Run in the copy program after blobcopy.py (whose manifest helpers it uses).
A snapshot tag (``TAG-RELEASE``) is a PUT of the very manifest bytes the
image's tag names, under the new tag: no blob moves. Before anything of an
image is pushed, its snapshot tag is looked at: one that already names
another digest stops the image (a release, once made, stays what it was).
Standard library only, no f-strings (see registry_client.py).
"""

# ruff: noqa: UP032 - str.format on purpose: f-strings need Python 3.6 on the host

from .blobcopy import CopyError, digest_of, get_manifest, put_manifest  # dropped on the host: defined above
from .registry_client import ACCEPT  # dropped on the host: defined above


def snapshot_digest(client, base: str, repository: str, snapshot: str) -> str:
    """The digest ``repository:snapshot`` names in the registry (HEAD), or "" when it names nothing."""
    url = "{}/v2/{}/manifests/{}".format(base, repository, snapshot)
    status, headers, _ = client.request("HEAD", url, ACCEPT, repository)
    if status == 404:
        return ""
    if status != 200:
        raise CopyError("HEAD {}: {}".format(url, headers.get("x-error") or "HTTP {}".format(status)))
    return headers.get("docker-content-digest") or "unknown"


def guard_snapshot(client, base: str, repository: str, snapshot: str, digest: str) -> bool:
    """Whether ``snapshot`` already names ``digest`` (False: it names nothing yet); a CopyError that
    will not be retried when it names another digest."""
    held = snapshot_digest(client, base, repository, snapshot)
    if held and held != digest:
        raise CopyError(
            "{}:{} already names {}, not {}: a release's snapshot tag is never moved "
            "(sync under a new release name)".format(repository, snapshot, held, digest),
            True,
        )
    return held == digest


def put_snapshot(client, base: str, repository: str, snapshot: str, media_type: str, body: bytes) -> str:
    """The tag's manifest bytes again under ``snapshot``, unless it names them already; its digest."""
    digest = digest_of(body)
    if not guard_snapshot(client, base, repository, snapshot, digest):
        put_manifest(client, base, repository, snapshot, media_type, body)
    return digest


def snapshot_of_present(client, base: str, image: dict) -> dict:
    """An image the registry already holds (``present``: its digest) tagged ``snapshot`` too: its result."""
    repository, digest, snapshot = image["repo"], image["present"], image["snapshot"]
    body, media_type, _ = get_manifest(client, base, repository, digest, ACCEPT)
    put_snapshot(client, base, repository, snapshot, media_type, body)
    return {"status": "tagged", "digest": digest, "snapshot": snapshot}
