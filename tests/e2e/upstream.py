"""Images for the e2e tests, the way production gets them into the registry: made here, pushed to the lab's
upstream (bench-upstream, a plain registry:2 on the lab network, playing quay.io), and copied into the
registry by ``fab sync-images``, the writer's only client besides prune and verify. Nodes cannot push.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import tarfile
import urllib.error
import urllib.request
from pathlib import Path

import yaml

from benchmarks import labnet

MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
CONFIG = "application/vnd.docker.container.image.v1+json"
LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"


def _sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _call(method: str, url: str, data: bytes | None = None, headers: dict | None = None) -> tuple[int, dict]:
    request = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=120) as answer:
            return answer.status, dict(answer.headers)
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers)


def _blob(base: str, repository: str, data: bytes) -> dict:
    digest = _sha(data)
    if _call("HEAD", f"{base}/v2/{repository}/blobs/{digest}")[0] != 200:
        status, headers = _call("POST", f"{base}/v2/{repository}/blobs/uploads/", b"")
        assert status == 202, status
        location = headers["Location"] if headers["Location"].startswith("http") else base + headers["Location"]
        status, _ = _call("PUT", f"{location}{'&' if '?' in location else '?'}digest={digest}", data,
                          {"Content-Type": "application/octet-stream"})  # fmt: skip
        assert status == 201, status
    return {"mediaType": LAYER, "size": len(data), "digest": digest}


def release(repository: str, tag: str, size: int = 1_000_000, created: str = "2024-01-01T00:00:00Z") -> str:
    """An image of ``size`` random bytes (a layer of its own) created at ``created``, pushed upstream as
    ``repository:tag``; its manifest's digest."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        data = os.urandom(size)
        info = tarfile.TarInfo(f"{tag}.bin")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    layer = gzip.compress(raw.getvalue(), compresslevel=1)
    base = f"http://{labnet.UPSTREAM}"
    config = {"architecture": "amd64", "os": "linux", "created": created, "config": {"Cmd": ["/bin/true"]},
              "rootfs": {"type": "layers", "diff_ids": [_sha(raw.getvalue())]}}  # fmt: skip
    config_bytes = json.dumps(config).encode()
    manifest = {
        "schemaVersion": 2,
        "mediaType": MANIFEST,
        "config": {**_blob(base, repository, config_bytes), "mediaType": CONFIG},
        "layers": [_blob(base, repository, layer)],
    }
    body = json.dumps(manifest).encode()
    status, _ = _call("PUT", f"{base}/v2/{repository}/manifests/{tag}", body, {"Content-Type": MANIFEST})
    assert status == 201, status
    return _sha(body)


def images_file(folder: Path, names: list[str], tag: str = "latest", name: str = "") -> Path:
    """An image list naming ``names`` (REPOSITORY:TAG) in the lab's upstream (plain HTTP)."""
    path = folder / (name or f"images-{len(names)}.yaml")
    data = {"registry": labnet.UPSTREAM, "insecure": True, "tag": tag, "names": names}
    path.write_text(yaml.safe_dump({"images": data}))
    return path


def start() -> None:
    """The lab's upstream, running."""
    labnet.start_upstream()


def synced(fab, folder: Path, names: list[str], inventory: Path | None = None, file_name: str = ""):
    """``names`` (REPOSITORY:TAG) made upstream (a small image each, where not there yet) and copied into the
    registry with ``fab sync-images``; the run's result, which must have passed."""
    start()
    for name in names:
        repository, _, tag = name.rpartition(":")
        if _call("HEAD", f"http://{labnet.UPSTREAM}/v2/{repository}/manifests/{tag}", headers={"Accept": MANIFEST})[0] != 200:
            release(repository, tag, 100_000)
    path = images_file(folder, names, name=file_name or f"synced-{abs(hash(tuple(names)))}.yaml")
    result = fab("sync-images", "--images", str(path), inventory=inventory)
    assert result.code == 0, result.output
    return result
