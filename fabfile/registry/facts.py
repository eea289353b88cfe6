"""The registry container's sections, on a host that runs an instance: the container and its image."""

from __future__ import annotations

import shlex

from ..facts.base import Section, fact, files, first_json
from ..model.context import StepContext
from .paths import ENV_FILE
from .tls import tls_sections


def container(name: str) -> Section:
    """``docker inspect NAME``'s object (None: no such container)."""
    shell = f"docker inspect {shlex.quote(name)} 2>/dev/null"
    return fact("container", shell, lambda f, t: setattr(f.registry, "container", first_json(t)))


def image(reference: str) -> Section:
    """The ID of the registry's image, "" when the host does not have it."""
    shell = f"docker image inspect --format '{{{{.Id}}}}' {shlex.quote(reference)} 2>/dev/null"
    return fact("image", shell, lambda f, t: setattr(f.registry, "image_id", t.strip()))


def container_sections(ctx: StepContext) -> tuple[Section, ...]:
    """Everything create-registry compares the running container with: the container, its image, a secure
    registry's files, an S3 store's env file."""
    settings = ctx.inventory.registry
    return (
        container(settings.name),
        image(settings.image),
        *tls_sections(ctx),
        *((files(ENV_FILE),) if settings.s3 else ()),
    )
