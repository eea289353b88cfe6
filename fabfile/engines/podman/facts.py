"""Podman's sections: its version (it has no daemon) and the images it holds."""

from __future__ import annotations

import json

from ...facts.base import fact
from ...model.facts import HostFacts
from .paths import NAME


def _version(facts: HostFacts, text: str) -> None:
    facts.engine(NAME).version = next(iter(text.split()[-1:]), "")


def _held(text: str) -> dict[str, list[str]]:
    try:
        listed = json.loads(text) if text.strip() else []
    except json.JSONDecodeError:
        return {}
    held: dict[str, list[str]] = {}
    for image in listed if isinstance(listed, list) else []:
        digests = [entry.rpartition("@")[2] for entry in image.get("RepoDigests") or [] if "@" in entry]
        for name in image.get("Names") or []:
            held.setdefault(name, []).extend(digests)
    return held


VERSION = fact(
    "podman",
    "command -v podman >/dev/null 2>&1 && { timeout 20 podman version --format '{{.Client.Version}}' 2>/dev/null "
    "|| timeout 20 podman --version 2>/dev/null; }",
    _version,
)
# Every image podman holds, by name, with all its repository digests (a list's and its image's).
HELD_IMAGES = fact(
    "podman-images",
    "command -v podman >/dev/null 2>&1 && timeout 60 podman images --format json 2>/dev/null",
    lambda f, t: setattr(f.engine(NAME), "images", _held(t)),
)
