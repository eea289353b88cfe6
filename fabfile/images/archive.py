"""``docker save`` archives: which images one holds, read on this machine before anything is sent."""

from __future__ import annotations

import json
import tarfile

from .model import Archived, Image


def archive_index(manifest: list[dict], sizes: dict[str, int]) -> dict[str, Archived]:
    """Each name in a ``docker save`` manifest.json, with its config digest and layer bytes."""
    index = {}
    for entry in manifest:
        # "<hex>.json" in Docker's own layout, "blobs/sha256/<hex>" in the OCI one (Docker >= 25).
        config = "sha256:" + entry["Config"].rsplit("/", 1)[-1].removesuffix(".json")
        size = sum(sizes.get(layer, 0) for layer in entry.get("Layers") or [])
        for ref in entry.get("RepoTags") or []:
            index[ref] = Archived(ref, config, size)
    return index


def archived_as(image: Image, index: dict[str, Archived], upstream: str) -> Archived | None:
    """The archive's copy of ``image``: saved under its upstream name, or without registry."""
    return index.get(image.at(upstream)) or index.get(image.name)


class ArchiveError(Exception):
    """An archive that cannot be read; the message names it."""


def read_archive(path: str) -> dict[str, Archived]:
    """The index of a ``docker save`` archive on this machine."""
    try:
        with tarfile.open(path) as archive:
            # A tar made by hand names its members ./manifest.json; docker save's, manifest.json.
            members = {member.name.removeprefix("./"): member for member in archive.getmembers()}
            manifest = json.load(archive.extractfile(members["manifest.json"]))
        sizes = {name: member.size for name, member in members.items()}
    except (OSError, tarfile.TarError, KeyError, ValueError, AttributeError) as error:
        raise ArchiveError(f"{path}: not a docker save archive ({error})") from None
    return archive_index(manifest, sizes)
