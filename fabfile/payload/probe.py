"""verify-registry's probe image, made here and pushed through the writer's unix socket (run on the
deployment host after registry_client.py).

Docker cannot push to a unix socket, so the probe is pushed with the registry API: one small
layer (a tar of one file, gzipped), its config and a schema 2 manifest, the same bytes on every
run of one host (no times in them), so that a second push sends only what the registry lacks.
The config has no creation date: prune-registry keeps undated tags, even with --all-repositories.
"""

# ruff: noqa: UP032 - str.format on purpose: f-strings need Python 3.6 on the host

import gzip
import hashlib
import io
import json
import tarfile

from .registry_client import UnixClient, host_architecture  # dropped on the host: defined above it there

LAYER_TYPE = "application/vnd.docker.image.rootfs.diff.tar.gzip"
CONFIG_TYPE = "application/vnd.docker.container.image.v1+json"
MANIFEST_TYPE = "application/vnd.docker.distribution.manifest.v2+json"
CONTENT = b"kolla-registry probe\n"


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def probe_layer() -> tuple:
    """(the layer's tar, the same gzipped): one file, no times, the same bytes on every run."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        info = tarfile.TarInfo("probe")
        info.size, info.mode, info.mtime = len(CONTENT), 0o644, 0
        tar.addfile(info, io.BytesIO(CONTENT))
    packed = io.BytesIO()
    with gzip.GzipFile(fileobj=packed, mode="wb", mtime=0) as out:
        out.write(buffer.getvalue())
    return buffer.getvalue(), packed.getvalue()


def probe_image(architecture: str) -> tuple:
    """(config, layer, manifest) bytes of the probe image for ``architecture``."""
    tar, layer = probe_layer()
    config = {
        "architecture": architecture,
        "os": "linux",
        "config": {},
        "rootfs": {"type": "layers", "diff_ids": [_digest(tar)]},
    }
    config_bytes = json.dumps(config, sort_keys=True).encode()
    manifest = {
        "schemaVersion": 2,
        "mediaType": MANIFEST_TYPE,
        "config": {"mediaType": CONFIG_TYPE, "size": len(config_bytes), "digest": _digest(config_bytes)},
        "layers": [{"mediaType": LAYER_TYPE, "size": len(layer), "digest": _digest(layer)}],
    }
    return config_bytes, layer, json.dumps(manifest, indent=3, sort_keys=True).encode()


def _put_blob(client, base: str, repository: str, data: bytes) -> str:
    """The blob in ``repository`` (sent only when missing); "" or why it could not be."""
    digest = _digest(data)
    url = "{}/v2/{}/blobs/{}".format(base, repository, digest)
    if client.request("HEAD", url, repository=repository)[0] == 200:
        return ""
    status, headers, body = client.request("POST", "{}/v2/{}/blobs/uploads/".format(base, repository), data=b"")
    location = headers.get("location", "")
    if status != 202 or not location:
        return "POST {}: HTTP {} {}".format(repository, status, headers.get("x-error") or body[:200].decode("utf-8", "replace"))
    target = location + ("&" if "?" in location else "?") + "digest=" + digest
    sent = {"Content-Type": "application/octet-stream", "Content-Length": str(len(data))}
    status, headers, body = client.request("PUT", target, data=data, headers=sent)
    if status != 201:
        return "PUT {}: HTTP {} {}".format(digest, status, headers.get("x-error") or body[:200].decode("utf-8", "replace"))
    return ""


def push_probe(request: dict) -> dict:
    """``{"probe": {"socket", "repository", "tag"}}`` -> ``{"pushed": DIGEST}`` or ``{"error": WHY}``."""
    job = request["probe"]
    client, base, repository = UnixClient(job["socket"]), "http://localhost", job["repository"]
    config, layer, manifest = probe_image(host_architecture(request))
    for blob in (layer, config):
        why = _put_blob(client, base, repository, blob)
        if why:
            return {"error": why}
    url = "{}/v2/{}/manifests/{}".format(base, repository, job["tag"])
    status, headers, body = client.request("PUT", url, data=manifest, headers={"Content-Type": MANIFEST_TYPE})
    if status != 201:
        return {"error": "PUT the manifest: HTTP {} {}".format(status, headers.get("x-error") or body[:200].decode("utf-8", "replace"))}
    return {"pushed": headers.get("docker-content-digest") or _digest(manifest)}
