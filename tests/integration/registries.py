"""Real CNCF registries on loopback (Debian's docker-registry), and images made up for them."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from fabfile.payload import blobcopy
from fabfile.payload.registry_client import ACCEPT, Client

BINARY = "/usr/bin/docker-registry"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
DOCKER_IMAGE = "application/vnd.docker.distribution.manifest.v2+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
CONFIG = """version: 0.1
log:
  level: info
  accesslog:
    disabled: false
storage:
  filesystem:
    rootdirectory: {root}
  delete:
    enabled: true
http:
  addr: 127.0.0.1:{port}
"""


def binary() -> str | None:
    """The registry binary, or None when this machine has none."""
    return shutil.which("docker-registry") or (BINARY if os.access(BINARY, os.X_OK) else None)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Registry:
    """One ``docker-registry serve`` on 127.0.0.1, its storage and its log in ``folder``."""

    folder: Path
    process: subprocess.Popen | None = None
    port: int = 0

    @classmethod
    def start(cls, folder: Path) -> Registry:
        folder.mkdir(parents=True, exist_ok=True)
        registry = cls(folder, port=free_port())
        config = folder / "config.yml"
        config.write_text(CONFIG.format(root=folder / "storage", port=registry.port))
        return registry.serve(config)

    def serve(self, config: Path, env: dict[str, str] | None = None) -> Registry:
        """Run ``docker-registry serve config`` (with ``env`` as its whole environment, if given); wait for /v2/."""
        with open(self.folder / "log", "ab") as log:
            self.process = subprocess.Popen([binary(), "serve", str(config)], stdout=log, stderr=log, env=env)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(f"{self.base}/v2/", timeout=1).close()
                return self
            except (urllib.error.URLError, OSError):
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"docker-registry did not answer: {(self.folder / 'log').read_text()[-2000:]}")

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self.process:
            self.process.terminate()
            self.process.wait(10)

    def blob_gets(self) -> dict[str, int]:
        """How many times each blob was asked for with GET, from the access log."""
        text = (self.folder / "log").read_text(errors="replace")
        return _count(re.findall(r'"GET /v2/[^ ]+/blobs/(sha256:[0-9a-f]{64}) HTTP/1.1" 200', text))

    def manifest_digest(self, repo: str, reference: str) -> str:
        """The Docker-Content-Digest of a HEAD of the manifest, or ""."""
        status, headers, _ = Client().request("HEAD", f"{self.base}/v2/{repo}/manifests/{reference}", ACCEPT, repo)
        return headers.get("docker-content-digest", "") if status == 200 else ""

    def has(self, repo: str, digest: str) -> bool:
        return blobcopy.has_blob(Client(), self.base, repo, digest)

    def manifest(self, repo: str, reference: str) -> dict:
        return blobcopy.get_manifest(Client(), self.base, repo, reference, ACCEPT)[2]


def _count(items: list[str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for item in items:
        counts[item] = counts.get(item, 0) + 1
    return counts


def digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass
class Made:
    """An image pushed into a registry: its tag's digest and its blobs."""

    repo: str
    tag: str
    digest: str
    blobs: list[str] = field(default_factory=list)


def push_blob(registry: Registry, repo: str, data: bytes) -> dict:
    """Put ``data`` into ``repo``; its descriptor."""
    found = digest(data)
    if not registry.has(repo, found):
        blobcopy.upload(Client(), registry.base, repo, found, len(data), [data])
    return {"mediaType": DOCKER_LAYER, "size": len(data), "digest": found}


def push_image(registry: Registry, repo: str, tag: str, layers: list[bytes], arch: str = "amd64") -> Made:
    """An image of ``layers`` (bytes, as if compressed) and a small config, pushed under ``tag``."""
    # Its layers' digests stand for their diff_ids: each image's config (its ID) is its own, as a real one's is.
    diff_ids = [digest(layer) for layer in layers]
    config = json.dumps({"architecture": arch, "os": "linux", "rootfs": {"type": "layers", "diff_ids": diff_ids}})
    descriptors = [push_blob(registry, repo, layer) for layer in layers]
    config_descriptor = dict(push_blob(registry, repo, config.encode()), mediaType=DOCKER_CONFIG)
    manifest = {"schemaVersion": 2, "mediaType": DOCKER_IMAGE, "config": config_descriptor, "layers": descriptors}
    body = json.dumps(manifest).encode()
    pushed = blobcopy.put_manifest(Client(), registry.base, repo, tag, DOCKER_IMAGE, body)
    return Made(repo, tag, pushed, [config_descriptor["digest"], *(d["digest"] for d in descriptors)])


def push_index(
    registry: Registry, repo: str, tag: str, children: dict[str, list[bytes]], media_type: str = OCI_INDEX
) -> tuple[Made, dict]:
    """A multi-platform image: {arch: layers}; the index (or Docker manifest list) and each platform's Made."""
    made = {arch: push_image(registry, repo, f"{tag}-{arch}", layers, arch) for arch, layers in children.items()}
    entries = [
        {"mediaType": DOCKER_IMAGE, "digest": m.digest, "size": len(_manifest_body(registry, m)),
         "platform": {"os": "linux", "architecture": arch}}
        for arch, m in made.items()
    ]
    body = json.dumps({"schemaVersion": 2, "mediaType": media_type, "manifests": entries}).encode()
    pushed = blobcopy.put_manifest(Client(), registry.base, repo, tag, media_type, body)
    return Made(repo, tag, pushed), made


def _manifest_body(registry: Registry, made: Made) -> bytes:
    return blobcopy.get_manifest(Client(), registry.base, made.repo, made.digest, ACCEPT)[0]
