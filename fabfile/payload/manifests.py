"""What a registry holds: a manifest's digest, config and size; the catalog. Runs on a host (see __init__)."""

# ruff: noqa: UP032 - str.format on purpose: f-strings need Python 3.6 on the host

import hashlib
import json

from .registry_client import ACCEPT, LIST_TYPES, PAGE, Client, next_page  # dropped on the host: defined above


def pick_platform(index: dict, architecture: str) -> str:
    """The digest of the linux/``architecture`` image in a manifest list, or ""."""
    for entry in index.get("manifests") or []:
        wanted = entry.get("platform") or {}
        if wanted.get("os") == "linux" and wanted.get("architecture") == architecture:
            return entry.get("digest", "")
    return ""


def summary(manifest: dict) -> dict:
    """An image manifest's config digest and its size: config and layers, as stored."""
    config = manifest.get("config") or {}
    layers = manifest.get("layers") or []
    size = (config.get("size") or 0) + sum(layer.get("size") or 0 for layer in layers)
    return {"config": config.get("digest", ""), "size": size}


def platform_text(platform: dict) -> str:
    """``linux/arm64/v8`` of a manifest list entry's (or an image config's) platform."""
    parts = [platform.get("os") or "", platform.get("architecture") or ""]
    return "/".join(parts + ([platform["variant"]] if platform.get("variant") else []))


def platforms_of(client: Client, base: str, repository: str, document: dict) -> list:
    """The platforms a manifest is made for: a list's entries', or an image's own (its config, from ``base``)."""
    if document.get("mediaType") in LIST_TYPES or "manifests" in document:
        found = [platform_text(entry.get("platform") or {}) for entry in document.get("manifests") or []]
        return sorted({text for text in found if "/" in text and not text.startswith("unknown/")})
    digest = (document.get("config") or {}).get("digest") or ""
    if not digest:
        return []
    status, _, body = client.request("GET", "{}/v2/{}/blobs/{}".format(base, repository, digest), "", repository)
    try:
        config = json.loads(body.decode()) if status == 200 else {}
    except ValueError:
        config = {}
    if not isinstance(config, dict) or not config.get("os") or not config.get("architecture"):
        return []
    return [platform_text(config)]


def manifest(client: Client, base: str, repository: str, tag: str, architecture: str, platforms: bool = False) -> dict:
    """What a registry holds for ``repository:tag`` (or at a digest): digest, config and size, from one GET
    (a HEAD first asked the same registry twice: the GET's headers carry the digest too); with
    ``platforms``, the platforms it is made for too."""
    url = "{}/v2/{}/manifests/{}".format(base, repository, tag)
    status, headers, body = client.request("GET", url, ACCEPT, repository)
    result = {"status": status, "digest": headers.get("docker-content-digest", "")}
    if status != 200:
        result["error"] = headers.get("x-error") or "HTTP {}".format(status)
        return result
    try:
        document = json.loads(body.decode()) if status == 200 else None
    except ValueError:
        document = None
    if not isinstance(document, dict):
        result["error"] = "GET {}: no manifest (HTTP {})".format(url, status)
        return result
    result["digest"] = result["digest"] or "sha256:" + hashlib.sha256(body).hexdigest()
    media_type = document.get("mediaType") or headers.get("content-type", "")
    result["media_type"] = media_type
    if platforms:
        result["platforms"] = platforms_of(client, base, repository, document)
    if media_type in LIST_TYPES or "manifests" in document:
        child = pick_platform(document, architecture)
        if not child:
            result["error"] = "no linux/{} image in the manifest list".format(architecture)
            return result
        url = "{}/v2/{}/manifests/{}".format(base, repository, child)
        status, _, body = client.request("GET", url, ACCEPT, repository)
        try:
            document = json.loads(body.decode()) if status == 200 else {}
        except ValueError:
            document = {}
    result.update(summary(document))
    return result


def catalog(client: Client, base: str) -> dict:
    """Whether ``base`` answers as a registry, and the repositories it lists."""
    status, headers, _ = client.request("GET", base + "/v2/")
    api = headers.get("docker-distribution-api-version", "")
    result = {"status": status, "api": api, "repositories": []}
    if not api.startswith("registry/2"):
        result["error"] = headers.get("x-error") or "HTTP {}, not a registry".format(status)
        return result
    url = base + "/v2/_catalog?n={}".format(PAGE)
    while url:
        status, headers, body = client.request("GET", url)
        try:
            if status != 200:
                raise ValueError(status)
            result["repositories"] += json.loads(body.decode()).get("repositories") or []
        except (ValueError, AttributeError):
            result["error"] = "GET /v2/_catalog: HTTP {}".format(status)
            break
        url = next_page(base, headers.get("link", ""))
    return result
