"""The registry container's sections, on a host that runs an instance: the container and its image."""

from __future__ import annotations

import shlex

from ..facts.base import Section, fact, first_json


def container(name: str) -> Section:
    """``docker inspect NAME``'s object (None: no such container)."""
    shell = f"docker inspect {shlex.quote(name)} 2>/dev/null"
    return fact("container", shell, lambda f, t: setattr(f.registry, "container", first_json(t)))


def image(reference: str) -> Section:
    """The ID of the registry's image, "" when the host does not have it."""
    shell = f"docker image inspect --format '{{{{.Id}}}}' {shlex.quote(reference)} 2>/dev/null"
    return fact("image", shell, lambda f, t: setattr(f.registry, "image_id", t.strip()))
