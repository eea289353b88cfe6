"""Blobs and manifests between registries, run on the deployment host after ``registry_client.py``.

Sent as part of one script with registry_client.py (whose ``Client`` it uses) and
copyrun.py: the relative import below is dropped then (see payload.program).
Standard library only, no f-strings (the hosts' Python may be old), like
registry_client.py. A blob is streamed, never decompressed nor written to disk:
read in CHUNK pieces from its source, hashed on the way, sent to the local
registry in one PATCH, and committed by a PUT only when its sha256 is right.
"""

# ruff: noqa: UP032 - str.format on purpose: f-strings need Python 3.6 on the host

import hashlib
import json
import time

from .registry_client import IMAGE_TYPES, LIST_TYPES  # dropped on the host: defined above it there

CHUNK = 1 << 20
SCHEMA1 = "application/vnd.docker.distribution.manifest.v1+prettyjws"
# HTTP statuses another attempt will not change.
PERMANENT = (400, 401, 403, 404, 405)


class CopyError(Exception):
    """A blob or a manifest that did not get across; ``permanent`` when retrying is useless."""

    def __init__(self, message: str, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


class BadDigest(CopyError):
    """A blob whose bytes are not its digest: from a registry perhaps a glitch, from an archive its content."""


# --- manifests and platforms (pure) ---------------------------------------------------------


def retried(action, args: tuple, retries: int, delay: float, transient: tuple = ()):
    """``action(*args)``'s value, tried ``retries`` more times ``delay`` s apart on a transient CopyError (or
    one of ``transient``); the last error, as a CopyError, if it never worked."""
    for tries in range(retries + 1):
        try:
            return action(*args)
        except CopyError as error:
            if error.permanent or tries == retries:
                return error
        except transient as error:
            if tries == retries:
                return CopyError(str(error))
        time.sleep(delay)
    return CopyError("no attempt made")


def parse_platform(text: str) -> dict:
    """``linux/arm64/v8`` -> {"os": "linux", "architecture": "arm64", "variant": "v8"}."""
    parts = text.split("/")
    found = {"os": parts[0], "architecture": parts[1] if len(parts) > 1 else ""}
    if len(parts) > 2:
        found["variant"] = parts[2]
    return found


def platform_matches(platform: dict, wanted: list) -> bool:
    """Whether a manifest list entry's platform is one of ``wanted`` (a variant only if named)."""
    for want in wanted:
        same = platform.get("os") == want["os"] and platform.get("architecture") == want["architecture"]
        if same and (not want.get("variant") or platform.get("variant") == want["variant"]):
            return True
    return False


def select_platforms(index: dict, platforms: list, present=None):
    """``index`` with only the entries of ``platforms`` (all when none) that are in ``present``
    (all when None); None when no entry is left. A changed index is a new document: its digest
    is no longer the upstream's (the images it lists keep theirs)."""
    wanted = [parse_platform(text) for text in platforms]
    kept = [
        entry
        for entry in index.get("manifests") or []
        if (not wanted or platform_matches(entry.get("platform") or {}, wanted))
        and (present is None or entry.get("digest") in present)
    ]
    if not kept:
        return None
    if len(kept) == len(index.get("manifests") or []):
        return index
    selected = dict(index)
    selected["manifests"] = kept
    return selected


def is_list(document: dict, media_type: str = "") -> bool:
    """Whether a manifest is a manifest list / OCI index (it names manifests, not layers)."""
    return (document.get("mediaType") or media_type) in LIST_TYPES or "manifests" in document


def media_type_of(document: dict, media_type: str = "") -> str:
    """The type a manifest is pushed with: its own mediaType, else what the registry said, else by shape."""
    if document.get("mediaType"):
        return document["mediaType"]
    if media_type in IMAGE_TYPES + LIST_TYPES:
        return media_type
    return LIST_TYPES[1] if "manifests" in document else IMAGE_TYPES[1]


def blob_descriptors(document: dict) -> list:
    """An image manifest's blobs: its config, then its layers (foreign layers, with ``urls``, stay out:
    they are never in a registry)."""
    found = [document["config"]] if document.get("config") else []
    return found + [layer for layer in document.get("layers") or [] if not layer.get("urls")]


def digest_of(body: bytes) -> str:
    return "sha256:" + hashlib.sha256(body).hexdigest()


def plan_blobs(needs: dict, present: set) -> list:
    """What to do for each blob: ``needs`` {digest: [repository, ...]}, ``present`` {(repository, digest)}
    found in the local registry. Returns [("fetch", digest, into, [also]), ("mount", digest, from, [into])]:
    a blob the registry holds in none of them is fetched once, into its first repository, and mounted
    into the others; one it holds anywhere is only mounted where it is missing."""
    actions = []
    for digest, repositories in needs.items():
        missing = [repo for repo in repositories if (repo, digest) not in present]
        holders = [repo for repo in repositories if (repo, digest) in present]
        if not missing:
            continue
        if holders:
            actions.append(("mount", digest, holders[0], missing))
        else:
            actions.append(("fetch", digest, missing[0], missing[1:]))
    # Fetches first: they are the long ones, and nothing waits for a mount.
    return sorted(actions, key=lambda action: action[0] != "fetch")


# --- the registry API ------------------------------------------------------------------------


def blob_url(base: str, repository: str, digest: str) -> str:
    return "{}/v2/{}/blobs/{}".format(base, repository, digest)


def has_blob(client, base: str, repository: str, digest: str) -> bool:
    """Whether the registry holds ``digest`` in ``repository`` (HEAD)."""
    status, headers, _ = client.request("HEAD", blob_url(base, repository, digest), repository=repository)
    if status not in (200, 404):
        _check(status, headers, b"", "HEAD " + blob_url(base, repository, digest))
    return status == 200


def start_upload(client, base: str, repository: str, digest: str = "", mount_from: str = "") -> str:
    """POST an upload; "" when a mount of ``digest`` from ``mount_from`` did it (201), else the upload's URL."""
    query = "?mount={}&from={}".format(digest, mount_from) if mount_from else ""
    url = "{}/v2/{}/blobs/uploads/{}".format(base, repository, query)
    status, headers, body = client.request("POST", url, repository=repository, data=b"")
    if status == 201 and mount_from:
        return ""
    _check(status, headers, body, "POST " + url, 202)
    return absolute(base, headers.get("location", ""))


def upload(client, base: str, repository: str, digest: str, size: int, chunks, location: str = "", sent=None) -> None:
    """Stream ``chunks`` into the registry as blob ``digest`` of ``size`` bytes, hashed on the way;
    committed only when the sha256 and the size are right (else the upload is cancelled)."""
    location = location or start_upload(client, base, repository)
    hashed = hashlib.sha256()
    count = [0]

    def body():
        for chunk in chunks:
            hashed.update(chunk)
            count[0] += len(chunk)
            if sent is not None:
                sent(len(chunk))
            yield chunk

    headers = {"Content-Type": "application/octet-stream", "Content-Length": str(size)}
    status, answer, text = client.request("PATCH", location, repository=repository, data=body(), headers=headers)
    got = "sha256:" + hashed.hexdigest()
    if status == 202 and (got != digest or count[0] != size):
        client.request("DELETE", location, repository=repository)
        raise BadDigest("{}: sha256 {} ({} bytes), expected {} ({} bytes)".format(digest, got, count[0], digest, size))
    _check(status, answer, text, "PATCH " + repository, 202)
    location = absolute(base, answer.get("location") or location)
    url = location + ("&" if "?" in location else "?") + "digest=" + digest
    status, answer, text = client.request("PUT", url, repository=repository, data=b"")
    _check(status, answer, text, "PUT " + repository + " " + digest, 201)


def fetch(client, base: str, repository: str, digest: str):
    """The upstream's blob as an open response, read in CHUNK pieces by the caller (who closes it)."""
    url = blob_url(base, repository, digest)
    status, headers, response = client.request("GET", url, repository=repository, stream=True)
    _check(status, headers, response if isinstance(response, bytes) else b"", "GET " + url, 200)
    return response


def chunks_of(stream, size: int = -1):
    """A stream's bytes in CHUNK pieces; at most ``size`` bytes when given."""
    left = size
    while left != 0:
        chunk = stream.read(CHUNK if left < 0 else min(CHUNK, left))
        if not chunk:
            return
        left -= len(chunk) if left > 0 else 0
        yield chunk


def get_manifest(client, base: str, repository: str, reference: str, accept: str) -> tuple:
    """(body bytes, media type, document) of a manifest; its digest checked when asked by digest."""
    url = "{}/v2/{}/manifests/{}".format(base, repository, reference)
    status, headers, body = client.request("GET", url, accept, repository)
    _check(status, headers, body, "GET " + url, 200)
    if reference.startswith("sha256:") and digest_of(body) != reference:
        raise CopyError("{}: the manifest's sha256 is {}".format(url, digest_of(body)))
    try:
        document = json.loads(body.decode())
    except ValueError:
        raise CopyError("{}: not a JSON manifest".format(url), True) from None
    media_type = headers.get("content-type", "").split(";")[0]
    if (document.get("mediaType") or media_type) == SCHEMA1 or document.get("schemaVersion") == 1:
        raise CopyError("{}: a schema 1 manifest, which no registry still serves to pulls".format(url), True)
    return body, media_type_of(document, media_type), document


def put_manifest(client, base: str, repository: str, reference: str, media_type: str, body: bytes) -> str:
    """PUT a manifest under ``reference`` (a tag or its digest); the digest the registry gives it."""
    url = "{}/v2/{}/manifests/{}".format(base, repository, reference)
    headers = {"Content-Type": media_type}
    status, answer, text = client.request("PUT", url, repository=repository, data=body, headers=headers)
    _check(status, answer, text, "PUT " + url, 201)
    return answer.get("docker-content-digest") or digest_of(body)


def absolute(base: str, location: str) -> str:
    """An upload's Location, which a registry may give relative to itself."""
    return location if "://" in location else base + location


def _check(status: int, headers: dict, body: bytes, what: str, wanted: int = 200) -> None:
    if status == wanted:
        return
    reason = headers.get("x-error") or "HTTP {}".format(status)
    try:
        errors = json.loads(body.decode()).get("errors") or []
        reason += ": " + "; ".join("{} {}".format(e.get("code", ""), e.get("message", "")) for e in errors)
    except (ValueError, AttributeError, UnicodeDecodeError):
        pass
    raise CopyError("{}: {}".format(what, reason), status in PERMANENT)
