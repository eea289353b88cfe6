"""Image archives on this machine: ``docker save`` tars, old and new, and OCI image layouts (tar or folder).

Read here, before anything is sent: which images one holds, and for each image
to copy, the manifests to push and the member that holds each blob. The host
then streams the blobs out of the uploaded tar (see payload/copyrun.py): no
``docker load``, nothing decompressed.
"""

from __future__ import annotations

import base64
import json
import os
import tarfile
from pathlib import Path

from ..model.grammar import DIGEST
from ..payload.blobcopy import blob_descriptors, digest_of, is_list, media_type_of, select_platforms
from ..payload.tarblobs import member_name, resolve
from .model import Archived, Image

DOCKER_IMAGE = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
# What docker push sends for an uncompressed layer (docker save keeps layers uncompressed).
DOCKER_TAR_LAYER = "application/vnd.docker.image.rootfs.diff.tar"
# Annotations that name an image in an OCI layout's index.json (containerd's, then the OCI one).
NAME_ANNOTATIONS = ("io.containerd.image.name", "org.opencontainers.image.ref.name")
# An export's index.json entry naming the OCI index that wraps a Docker-typed manifest: the wrapped digest.
WRAPS = "io.kolla-registry.wraps"


class ArchiveError(Exception):
    """An archive that cannot be read; the message names it."""


class Layout:
    """The files of an archive, by name: members of a tar, or files under a folder."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.folder = os.path.isdir(path)
        if self.folder:
            # Only the folder's own files: a link out of it (to ~/.docker/config.json...) is not one.
            self.root = Path(path).resolve()
            found = (f for f in self.root.rglob("*") if f.is_file() and _inside(self.root, f))
            self.sizes = {f.relative_to(self.root).as_posix(): f.stat().st_size for f in found}
            return
        with tarfile.open(path) as archive:
            # A tar made by hand names its members ./manifest.json; docker save's, manifest.json.
            self.members = {member_name(member.name): member for member in archive.getmembers()}
        self.sizes = {name: self.member(name).size for name in self.members}

    def member(self, name: str) -> tarfile.TarInfo:
        """A tar member, links followed (as the host will follow them)."""
        return resolve(self.members, name)

    def read(self, name: str) -> bytes:
        """A member's bytes; in a folder, only a file of the folder (never one a name or link leads out to)."""
        if self.folder:
            path = self.root / name
            if name not in self.sizes or not _inside(self.root, path):
                raise ArchiveError(f"{name}: not a file of {self.path}")
            return path.read_bytes()
        with tarfile.open(self.path) as archive:
            return archive.extractfile(self.member(name)).read()

    def json(self, name: str):
        return json.loads(self.read(name))


def _inside(root: Path, path: Path) -> bool:
    """Whether ``path``, links followed, is under ``root`` (itself resolved)."""
    try:
        path.resolve().relative_to(root)
    except (ValueError, OSError):
        return False
    return True


def checked_digest(digest: object) -> str:
    """``digest`` when it is ``sha256:`` and 64 hex digits; else ArchiveError (it would be a path)."""
    if not isinstance(digest, str) or not DIGEST.fullmatch(digest):
        raise ArchiveError(f"{str(digest)[:100]!r} is not a sha256 digest (sha256: and 64 hex digits)")
    return digest


def blob_name(digest: str) -> str:
    """Where an OCI layout keeps a blob."""
    return "blobs/sha256/" + checked_digest(digest).removeprefix("sha256:")


def archive_index(manifest: list[dict], sizes: dict[str, int]) -> dict[str, Archived]:
    """Each name in a ``docker save`` manifest.json, with its config digest and layer bytes."""
    index = {}
    for entry in manifest:
        # "<hex>.json" in Docker's own layout, "blobs/sha256/<hex>" in the OCI one (Docker >= 25).
        config = "sha256:" + entry["Config"].rsplit("/", 1)[-1].removesuffix(".json")
        layers = tuple(entry.get("Layers") or [])
        size = sum(sizes.get(layer, 0) for layer in layers)
        for ref in entry.get("RepoTags") or []:
            index[ref] = Archived(ref, config, size, entry["Config"], layers)
    return index


def layout_index(layout: Layout) -> dict[str, Archived]:
    """Each image an OCI layout's index.json names, as its manifest's descriptor (used as it is; an export's
    wrapper unwrapped: the image is the upstream's manifest it wraps)."""
    index = {}
    for named in layout.json("index.json").get("manifests") or []:
        annotations = named.get("annotations") or {}
        names = [annotations[key] for key in NAME_ANNOTATIONS if annotations.get(key)]
        if not names:
            continue
        descriptor = unwrapped(layout, named)
        config, size = _summary(layout, descriptor["digest"])
        for name in names:
            for ref in dict.fromkeys([name, name.removeprefix("docker.io/").removeprefix("library/")]):
                index.setdefault(ref, Archived(ref, config, size, descriptor=json.dumps(descriptor)))
    return index


def unwrapped(layout: Layout, descriptor: dict) -> dict:
    """The descriptor of the manifest an export's wrapper stands for (see payload/ocilayout.py): its digest,
    size and type as the upstream served it, the names kept; any other descriptor as it is."""
    annotations = descriptor.get("annotations") or {}
    if WRAPS not in annotations:
        return descriptor
    name = blob_name(annotations[WRAPS])
    if name not in layout.sizes:
        raise ArchiveError(f"{annotations[WRAPS]}: wrapped by index.json's {descriptor.get('digest')}, but not in the layout")
    document = layout.json(name)
    kept = {key: value for key, value in annotations.items() if key != WRAPS}
    return {"mediaType": media_type_of(document), "digest": annotations[WRAPS], "size": layout.sizes[name], "annotations": kept}


def _summary(layout: Layout, digest: str) -> tuple[str, int]:
    """An OCI manifest's config digest and stored size; a list's first image that the layout holds."""
    document = layout.json(blob_name(digest))
    if is_list(document):
        held = [entry["digest"] for entry in document["manifests"] if blob_name(entry["digest"]) in layout.sizes]
        return _summary(layout, held[0]) if held else ("", 0)
    return (document.get("config") or {}).get("digest", ""), sum(d.get("size", 0) for d in blob_descriptors(document))


def archived_as(image: Image, index: dict[str, Archived], upstream: str) -> Archived | None:
    """The archive's copy of ``image``: saved under its upstream name, or without registry."""
    return index.get(image.at(upstream)) or index.get(image.name)


def read_archive(path: str) -> dict[str, Archived]:
    """The images of a ``docker save`` tar or an OCI layout (tar or folder) on this machine."""
    try:
        layout = Layout(path)
        index = layout_index(layout) if "index.json" in layout.sizes else {}
        if "manifest.json" in layout.sizes:
            saved = archive_index(layout.json("manifest.json"), layout.sizes)
            # Docker >= 25 writes both: the OCI manifest (kept as it is) wins, named as docker save names it.
            by_config = {archived.config: archived for archived in index.values()}
            for ref, archived in saved.items():
                oci = by_config.get(archived.config)
                index[ref] = Archived(ref, oci.config, oci.size, descriptor=oci.descriptor) if oci else archived
    except ArchiveError as error:
        raise ArchiveError(f"{path}: {error}") from None
    except (OSError, tarfile.TarError, KeyError, ValueError, AttributeError, TypeError) as error:
        raise ArchiveError(f"{path}: not a docker save archive or OCI layout ({error})") from None
    if not index:
        raise ArchiveError(f"{path}: not a docker save archive or OCI layout (no manifest.json, no named image)")
    return index


def copy_spec(layout: Layout, archived: Archived, tag: str, platforms: list[str]) -> dict:
    """What the host pushes for one archived image: manifests (the tag's last) and each blob's member."""
    if archived.descriptor:
        return _oci_spec(layout, json.loads(archived.descriptor), tag, platforms)
    config = layout.read(archived.config_file)
    diff_ids = [checked_digest(diff_id) for diff_id in json.loads(config)["rootfs"]["diff_ids"]]
    if len(diff_ids) != len(archived.layer_files):
        raise ArchiveError(f"{archived.ref}: {len(archived.layer_files)} layers, but {len(diff_ids)} in its config")
    layers = [
        {"mediaType": DOCKER_TAR_LAYER, "size": layout.sizes[name], "digest": diff_id}
        for name, diff_id in zip(archived.layer_files, diff_ids, strict=True)
    ]
    config_digest = digest_of(config)
    manifest = {
        "schemaVersion": 2,
        "mediaType": DOCKER_IMAGE,
        "config": {"mediaType": DOCKER_CONFIG, "size": len(config), "digest": config_digest},
        "layers": layers,
    }
    blobs = {config_digest: archived.config_file, **dict(zip(diff_ids, archived.layer_files, strict=True))}
    return {"manifests": [[tag, DOCKER_IMAGE, _encoded(json.dumps(manifest, indent=3).encode())]], "blobs": blobs}


def _oci_spec(layout: Layout, descriptor: dict, tag: str, platforms: list[str]) -> dict:
    body = layout.read(blob_name(descriptor["digest"]))
    document = json.loads(body)
    media_type = media_type_of(document, descriptor.get("mediaType", ""))
    manifests, images = [], [document]
    if is_list(document):
        # Only what the layout holds can be pushed (docker save may keep one platform of a list).
        held = {entry["digest"] for entry in document["manifests"] if blob_name(entry["digest"]) in layout.sizes}
        chosen = select_platforms(document, platforms, held)
        if chosen is None:
            raise ArchiveError(f"{tag}: no image of {' or '.join(platforms) or 'the list'} in the archive")
        images = []
        for entry in chosen["manifests"]:
            child = layout.read(blob_name(entry["digest"]))
            images.append(json.loads(child))
            manifests.append([entry["digest"], media_type_of(images[-1], entry.get("mediaType", "")), _encoded(child)])
        if chosen is not document:
            body = json.dumps(chosen, indent=3).encode()
    manifests.append([tag, media_type, _encoded(body)])
    blobs = {blob["digest"]: blob_name(blob["digest"]) for image in images for blob in blob_descriptors(image)}
    return {"manifests": manifests, "blobs": blobs}


def _encoded(body: bytes) -> str:
    return base64.b64encode(body).decode()
