"""A deterministic Kolla-like image set made of incompressible data, and its push to a registry.

Every image is base + openstack-base + its own leaf layer, as Kolla's images share
their base layers. Layers are gzipped tars of seeded random bytes: the same set on
every run, and no compressor can shrink it, so the floor is physical.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import random
import tarfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

NAMESPACE = "openstack.kolla"
TAG = "bench"
SERVICES = (
    "keystone", "glance-api", "nova-api", "nova-compute", "nova-conductor", "nova-scheduler",
    "neutron-server", "neutron-openvswitch-agent", "cinder-api", "cinder-volume", "heat-api", "horizon",
)  # fmt: skip
MB = 1_000_000
MANIFEST_V2 = "application/vnd.docker.distribution.manifest.v2+json"
CONFIG_V1 = "application/vnd.docker.container.image.v1+json"
LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"


@dataclass(frozen=True)
class Sizes:
    """Bytes of each kind of layer, and how many services."""

    base: int
    openstack_base: int
    leaf: int
    services: int

    @property
    def names(self) -> tuple[str, ...]:
        return SERVICES[: self.services]


FULL = Sizes(base=120 * MB, openstack_base=120 * MB, leaf=10 * MB, services=12)
QUICK = Sizes(base=4 * MB, openstack_base=4 * MB, leaf=1 * MB, services=3)
# The replicas benchmark's set (126 MB unique): no layer dominates, so a node extracts each layer while the
# next ones download. With FULL's two 120 MB layers finishing last, every node extracted most of the set at
# the end, all at once, on this machine's 2 shared CPUs: a tail that grows with N, not with the links.
LINKS = Sizes(base=10 * MB, openstack_base=20 * MB, leaf=8 * MB, services=12)


@dataclass(frozen=True)
class Blob:
    digest: str
    size: int
    path: Path
    diff_id: str = ""


@dataclass(frozen=True)
class ImageSet:
    """The blobs on disk and each image's layers; sizes as they cross the wire."""

    layers: dict[str, Blob]
    images: dict[str, tuple[str, ...]]

    @property
    def unique_bytes(self) -> int:
        return sum(blob.size for blob in self.layers.values())

    @property
    def logical_bytes(self) -> int:
        return sum(self.layers[name].size for layers in self.images.values() for name in layers)

    def refs(self, registry: str) -> list[str]:
        return [f"{registry}/{NAMESPACE}/{service}:{TAG}" for service in self.images]


def build(sizes: Sizes, folder: Path) -> ImageSet:
    """The set's layers (made once, then read from ``folder``) and each image's layer names."""
    folder.mkdir(parents=True, exist_ok=True)
    wanted = {"base": sizes.base, "openstack-base": sizes.openstack_base}
    wanted.update({f"leaf-{service}": sizes.leaf for service in sizes.names})
    layers = {name: _layer(folder, name, size) for name, size in wanted.items()}
    images = {service: ("base", "openstack-base", f"leaf-{service}") for service in sizes.names}
    return ImageSet(layers, images)


def build_named(sizes: Sizes, folder: Path, names: list[str]) -> ImageSet:
    """Like ``build``, for the images ``names`` (kolla-ansible's): base + openstack-base + a leaf each."""
    folder.mkdir(parents=True, exist_ok=True)
    wanted = {"base": sizes.base, "openstack-base": sizes.openstack_base, **{f"leaf-{n}": sizes.leaf for n in names}}
    layers = {name: _layer(folder, name, size) for name, size in wanted.items()}
    return ImageSet(layers, {name: ("base", "openstack-base", f"leaf-{name}") for name in names})


def _layer(folder: Path, name: str, size: int) -> Blob:
    """A gzipped tar holding ``size`` seeded random bytes; cached with its digests beside it."""
    path = folder / f"{name}-{size}.tar.gz"
    meta = path.with_suffix(".json")
    if path.exists() and meta.exists():
        known = json.loads(meta.read_text())
        return Blob(known["digest"], path.stat().st_size, path, known["diff_id"])
    data = random.Random(f"{name}-{size}").randbytes(size)
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.GNU_FORMAT) as tar:
        info = tarfile.TarInfo(f"opt/kolla/{name}.bin")
        info.size, info.mtime, info.mode = size, 0, 0o644
        tar.addfile(info, io.BytesIO(data))
    uncompressed = raw.getvalue()
    compressed = gzip.compress(uncompressed, compresslevel=1, mtime=0)
    path.write_bytes(compressed)
    blob = Blob(_sha(compressed), len(compressed), path, _sha(uncompressed))
    meta.write_text(json.dumps({"digest": blob.digest, "diff_id": blob.diff_id}))
    return blob


def _sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def push(image_set: ImageSet, registry: str, tag: str = TAG) -> None:
    """Every image into ``registry`` (plain HTTP) over the API, under ``tag``: blobs once, then manifests."""
    base = f"http://{registry}/v2/{NAMESPACE}"
    for service, names in image_set.images.items():
        for name in names:
            blob = image_set.layers[name]
            _upload(base, service, blob.digest, blob.path.read_bytes())
        config = _config([image_set.layers[name].diff_id for name in names])
        _upload(base, service, _sha(config), config)
        manifest = {
            "schemaVersion": 2,
            "mediaType": MANIFEST_V2,
            "config": {"mediaType": CONFIG_V1, "size": len(config), "digest": _sha(config)},
            "layers": [
                {"mediaType": LAYER_GZIP, "size": image_set.layers[n].size, "digest": image_set.layers[n].digest}
                for n in names
            ],
        }
        body = json.dumps(manifest).encode()
        _call("PUT", f"{base}/{service}/manifests/{tag}", body, {"Content-Type": MANIFEST_V2})


def _config(diff_ids: list[str]) -> bytes:
    config = {
        "architecture": "amd64",
        "os": "linux",
        "created": "2024-01-01T00:00:00Z",
        "config": {"Cmd": ["/bin/true"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    }
    return json.dumps(config, sort_keys=True).encode()


def _upload(base: str, service: str, digest: str, data: bytes) -> None:
    if _call("HEAD", f"{base}/{service}/blobs/{digest}", ok=(200, 404)) == 200:
        return
    location = _call("POST", f"{base}/{service}/blobs/uploads/", b"", want_location=True)
    separator = "&" if "?" in location else "?"
    _call("PUT", f"{location}{separator}digest={digest}", data, {"Content-Type": "application/octet-stream"})


def _call(method, url, data=None, headers=None, ok=(200, 201, 202), want_location=False):
    request = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=120) as answer:
            status, location = answer.status, answer.headers.get("Location", "")
    except urllib.error.HTTPError as error:
        status, location = error.code, ""
    if status not in ok:
        raise RuntimeError(f"{method} {url}: HTTP {status}")
    if want_location:
        return location if location.startswith("http") else url.split("/v2/")[0] + location
    return status
