"""Every tag of every repository and what it points at, and deletes by digest (prune-registry). Runs on a host."""

# ruff: noqa: UP032 - str.format on purpose: f-strings need Python 3.6 on the host

import hashlib
import json
from concurrent.futures import ThreadPoolExecutor

from .manifests import catalog, pick_platform  # dropped on the host: defined above
from .registry_client import ACCEPT, LIST_TYPES, PAGE, SCHEMA1_TYPES, WORKERS, Client, next_page  # likewise


def scan(client: Client, base: str, architecture: str) -> dict:
    """The catalog, then each repository's tags, each tag's digest, kind, created time and blobs."""
    found = catalog(client, base)
    if found.get("error"):
        return {"error": found["error"], "repositories": []}
    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        listed = list(pool.map(lambda name: tag_list(client, base, name), found["repositories"]))
        work = [(entry, tag) for entry in listed for tag in entry.pop("names")]
        described = list(
            pool.map(lambda item: described_tag(client, base, item[0]["name"], item[1], architecture), work)
        )
    for (entry, _), tag in zip(work, described):
        entry["tags"].append(tag)
    return {"repositories": listed}


def tag_list(client: Client, base: str, repository: str) -> dict:
    """``{"name", "names": [TAG, ...], "tags": [], "error"}``, every page of the tag list."""
    entry = {"name": repository, "names": [], "tags": [], "error": ""}
    url = "{}/v2/{}/tags/list?n={}".format(base, repository, PAGE)
    while url:
        status, headers, body = client.request("GET", url, "", repository)
        try:
            if status != 200:
                # A failed page's body is an error document: its tags would read as none.
                raise ValueError(status)
            entry["names"] += json.loads(body.decode()).get("tags") or []
        except (ValueError, AttributeError):
            entry["error"] = "GET /v2/{}/tags/list: {}".format(
                repository, headers.get("x-error") or "HTTP {}".format(status)
            )
            break
        url = next_page(base, headers.get("link", ""))
    return entry


def described_tag(client: Client, base: str, repository: str, tag: str, architecture: str) -> dict:
    """One tag: its manifest's digest and media type, its platform manifests (a list's), its blobs
    ([[DIGEST, SIZE], ...]) and when its image was made (the config's ``created``), or an error."""
    result = {
        "tag": tag,
        "digest": "",
        "media_type": "",
        "children": [],
        "blobs": [],
        "created": "",
        "error": "",
    }
    document, digest, media_type, error = fetch_manifest(client, base, repository, tag)
    if error:
        result["error"] = error
        return result
    result.update(digest=digest, media_type=media_type)
    if media_type in LIST_TYPES or "manifests" in document:
        result["children"] = [entry.get("digest", "") for entry in document.get("manifests") or []]
        chosen = pick_platform(document, architecture) or (result["children"] or [""])[0]
        for child in result["children"]:
            child_document, _, _, error = fetch_manifest(client, base, repository, child)
            if error:
                result["error"] = "{} of {}: {}".format(child, tag, error)
                return result
            result["blobs"] += image_blobs(child_document)
            if child == chosen:
                result["created"] = created(client, base, repository, child_document)
        return result
    result["blobs"] = image_blobs(document)
    result["created"] = created(client, base, repository, document)
    return result


def fetch_manifest(client: Client, base: str, repository: str, reference: str) -> tuple:
    """(document, digest, media type, error) of one manifest, as the registry stores it."""
    url = "{}/v2/{}/manifests/{}".format(base, repository, reference)
    status, headers, body = client.request("GET", url, ACCEPT + ", " + ", ".join(SCHEMA1_TYPES), repository)
    try:
        document = json.loads(body.decode()) if status == 200 else None
    except ValueError:
        document = None
    if not isinstance(document, dict):
        return {}, "", "", "GET {}: {}".format(url, headers.get("x-error") or "HTTP {}".format(status))
    digest = headers.get("docker-content-digest") or "sha256:" + hashlib.sha256(body).hexdigest()
    media_type = document.get("mediaType") or headers.get("content-type", "").split(";")[0]
    return document, digest, media_type, ""


def image_blobs(document: dict) -> list:
    """An image manifest's config and layers as [[DIGEST, SIZE], ...] (schema 1: layers, size 0)."""
    config = document.get("config") or {}
    blobs = [config] if config.get("digest") else []
    blobs += document.get("layers") or []
    found = [[blob.get("digest", ""), blob.get("size") or 0] for blob in blobs]
    found += [[layer.get("blobSum", ""), 0] for layer in document.get("fsLayers") or []]
    return [blob for blob in found if blob[0]]


def created(client: Client, base: str, repository: str, document: dict) -> str:
    """When the image was made: its config's ``created`` (schema 1: its newest history entry's), or ""."""
    history = document.get("history") or []
    if history and isinstance(history[0], dict) and "v1Compatibility" in history[0]:
        try:
            return json.loads(history[0]["v1Compatibility"]).get("created") or ""
        except ValueError:
            return ""
    digest = (document.get("config") or {}).get("digest")
    if not digest:
        return ""
    status, _, body = client.request(
        "GET", "{}/v2/{}/blobs/{}".format(base, repository, digest), "", repository
    )
    try:
        config = json.loads(body.decode()) if status == 200 else {}
    except ValueError:
        config = {}
    return (config.get("created") or "") if isinstance(config, dict) else ""


def recheck_and_delete(client: Client, base: str, repositories: list) -> dict:
    """Each repository's tags again, then its deletes: ``[{"name", "manifests": [DIGEST, ...], "going":
    [[TAG, DIGEST], ...]}]``. A manifest that a tag not going now uses (itself, or a list of it) is kept
    and named; the others are deleted. Meant to run while nobody else can push (see registry/collect.py)."""
    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        done = list(pool.map(lambda repo: recheck_repository(client, base, repo), repositories))
    return {
        "deleted": [answer for answers, _ in done for answer in answers],
        "current": {repo["name"]: tags for repo, (_, tags) in zip(repositories, done) if tags is not None},
    }


def recheck_repository(client: Client, base: str, repo: dict) -> tuple:
    """([answer per manifest], {tag: digest} as found, or None when the tags could not be read)."""
    name, going = repo["name"], {tuple(pair) for pair in repo.get("going") or []}
    listed = tag_list(client, base, name)
    tags, uses, error = {}, {}, listed["error"]
    for tag in [] if error else listed["names"]:
        document, digest, _, error = fetch_manifest(client, base, name, tag)
        if error:
            break
        tags[tag] = digest
        if (tag, digest) not in going:
            for used in [digest] + [entry.get("digest", "") for entry in document.get("manifests") or []]:
                uses.setdefault(used, tag)
    if error:
        # Not knowing what uses a manifest now, delete none of this repository's.
        failed = {"status": 0, "error": "looking again before deleting: " + error, "kept": ""}
        return [dict(failed) for _ in repo["manifests"]], None
    answers = []
    for digest in repo["manifests"]:
        if digest in uses:
            answers.append({"status": 0, "error": "", "kept": uses[digest]})
        else:
            answers.append(dict(delete(client, base, name, digest), kept=""))
    return answers, tags


def delete(client: Client, base: str, repository: str, digest: str) -> dict:
    """DELETE one manifest by digest: 202 deleted, 404 already gone, 405 deletes are off."""
    url = "{}/v2/{}/manifests/{}".format(base, repository, digest)
    status, headers, _ = client.request("DELETE", url, "", repository)
    result = {"status": status, "error": ""}
    if status == 405:
        result["error"] = "the registry does not allow deletes (storage.delete is off)"
    elif status not in (200, 202, 404):
        result["error"] = "DELETE {}: {}".format(url, headers.get("x-error") or "HTTP {}".format(status))
    return result
