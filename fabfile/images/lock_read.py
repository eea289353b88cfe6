"""Reading a lock file (or the lock inside an export bundle), every value checked against its grammar.

A lock names what goes into the registry every node pulls from, and its values
travel in the programs' requests: an image, digest, platform, tag or registry
that is not what it claims to be is refused, the error naming the file and the
key (``kolla-images.lock.yaml: images[3].digest: ...``).
"""

from __future__ import annotations

import os
import re
import tarfile
from typing import Any

import yaml

from ..model import grammar
from .lock import DEFAULT_NAME, VERSION, Lock, LockEntry
from .model import Image


class LockError(Exception):
    """A lock that cannot be used; the message names the file and the key."""


def read_lock(path: str) -> Lock:
    """The lock in the file ``path``, or in an export bundle (a folder or tar holding ``kolla-images.lock.yaml``)."""
    text = _lock_text(path)
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError:
        raise LockError(f"{path}: not valid YAML") from None
    if not isinstance(data, dict) or data.get("kolla_registry_lock") != VERSION:
        raise LockError(f"{path}: not a kolla-registry lock (no kolla_registry_lock: {VERSION})")
    checked = _Checker(path)
    entries = data.get("images")
    if not isinstance(entries, list) or not entries:
        raise LockError(f"{path}: images: expected a list of images")
    lock = Lock(
        registry=checked.value(data.get("registry"), "registry", grammar.REGISTRY_HOST, "a registry (host[:port])"),
        insecure=checked.flag(data.get("insecure", False), "insecure"),
        entries=tuple(checked.entry(item, f"images[{i}]") for i, item in enumerate(entries)),
        platforms=checked.platforms(data.get("platforms"), "platforms"),
        release=checked.optional(data.get("release"), "release", grammar.IMAGE_TAG, "a release name"),
        path=path,
    )
    names = [entry.image for entry in lock.entries]
    if len(set(names)) != len(names):
        twice = next(image for image in names if names.count(image) > 1)
        raise LockError(f"{path}: images: {twice.name} is listed twice")
    return lock


def _lock_text(path: str) -> str:
    try:
        if os.path.isdir(path):
            with open(os.path.join(path, DEFAULT_NAME), encoding="utf-8") as handle:
                return handle.read()
        if tarfile.is_tarfile(path):
            with tarfile.open(path) as bundle:
                member = bundle.getmember(DEFAULT_NAME)
                found = bundle.extractfile(member) if member.isfile() else None
                if found is None:
                    raise KeyError(DEFAULT_NAME)
                return found.read().decode("utf-8")
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except KeyError:
        raise LockError(f"{path}: a tar without {DEFAULT_NAME}: not an export bundle") from None
    except (OSError, UnicodeDecodeError, tarfile.TarError) as error:
        raise LockError(f"{path}: cannot read the lock ({getattr(error, 'strerror', None) or error})") from None


class _Checker:
    """Each value of one lock file against its grammar; errors name the file and the key."""

    def __init__(self, path: str) -> None:
        self.path = path

    def fail(self, key: str, problem: str) -> LockError:
        return LockError(f"{self.path}: {key}: {problem}")

    def value(self, value: Any, key: str, pattern, what: str) -> str:
        if not isinstance(value, str) or not pattern.fullmatch(value):
            raise self.fail(key, f"{str(value)[:100]!r} is not {what}")
        return value

    def optional(self, value: Any, key: str, pattern, what: str) -> str:
        return "" if value in (None, "") else self.value(value, key, pattern, what)

    def flag(self, value: Any, key: str) -> bool:
        if not isinstance(value, bool):
            raise self.fail(key, "expected true or false")
        return value

    def platforms(self, value: Any, key: str) -> tuple[str, ...]:
        if value is None:
            return ()
        if not isinstance(value, list):
            raise self.fail(key, "expected a list of platforms")
        what = "a platform (os/architecture[/variant])"
        return tuple(self.value(item, f"{key}[{i}]", grammar.PLATFORM, what) for i, item in enumerate(value))

    def entry(self, item: Any, key: str) -> LockEntry:
        if not isinstance(item, dict):
            raise self.fail(key, "expected a mapping")
        name = self.value(item.get("image"), f"{key}.image", _IMAGE, "an image (namespace/name:tag)")
        path, _, tag = name.rpartition(":")
        return LockEntry(
            image=Image(path, tag),
            upstream=self.value(item.get("upstream"), f"{key}.upstream", grammar.IMAGE_REFERENCE, "an image reference"),
            digest=self.value(item.get("digest"), f"{key}.digest", grammar.DIGEST, "a sha256 digest (sha256: and 64 hex digits)"),
            upstream_digest=self.optional(item.get("upstream_digest"), f"{key}.upstream_digest", grammar.DIGEST, "a sha256 digest"),
            platforms=self.platforms(item.get("platforms"), f"{key}.platforms"),
            synced=self.optional(item.get("synced"), f"{key}.synced", _WHEN, "a UTC time (2025-06-01T12:00:00Z)"),
            snapshot=self.optional(item.get("snapshot"), f"{key}.snapshot", grammar.IMAGE_TAG, "an image tag"),
        )


_IMAGE = re.compile(rf"{grammar.IMAGE_PATH.pattern}:{grammar.IMAGE_TAG.pattern}")
# When an image was synced: UTC, to the second.
_WHEN = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")
