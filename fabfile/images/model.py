"""Images: which ones a sync or a pull is about, and what a registry said of each."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from ..model import grammar
from ..model.inventory import ImageSettings
from ..model.outcome import FAILED

PRESENT, COPIED, TO_COPY = "present", "copied", "to copy"
# An image the registry holds whose release's snapshot tag is still to push (no blob moves).
TO_TAG, TAGGED = "to tag", "tagged"
# An image written into an export bundle, or to be.
TO_EXPORT, EXPORTED = "to export", "exported"


@dataclass(frozen=True)
class Image:
    """One image: its path in a registry (namespace included) and its tag."""

    path: str
    tag: str

    @property
    def name(self) -> str:
        return f"{self.path}:{self.tag}"

    def at(self, registry: str) -> str:
        """Its reference in ``registry``: ``quay.io/openstack.kolla/nova-api:TAG``."""
        return f"{registry}/{self.name}"


@dataclass(frozen=True)
class Manifest:
    """What one registry answered about one image; status 0 when it did not answer."""

    status: int = 0
    digest: str = ""
    config: str = ""
    size: int = 0
    error: str = ""
    # The platforms it is made for (os/architecture[/variant]), when asked.
    platforms: tuple[str, ...] = ()

    @classmethod
    def from_answer(cls, answer: dict) -> Manifest:
        return cls(
            status=int(answer.get("status") or 0),
            digest=answer.get("digest") or "",
            config=answer.get("config") or "",
            size=int(answer.get("size") or 0),
            error=answer.get("error") or "",
            platforms=tuple(str(text) for text in answer.get("platforms") or ()),
        )

    @property
    def exists(self) -> bool:
        return self.status == 200


@dataclass(frozen=True)
class Archived:
    """One image in an archive: the name it has there, its config digest, its size, and where it is:
    docker save's config and layer files, or an OCI manifest's descriptor (JSON)."""

    ref: str
    config: str
    size: int
    config_file: str = ""
    layer_files: tuple[str, ...] = ()
    descriptor: str = ""


@dataclass(frozen=True)
class Synced:
    """One image's row in the table: what was (or would be) done with it."""

    image: Image
    status: str
    digest: str = ""
    size: int = 0
    message: str = ""
    source: str = ""
    # The upstream's manifest digest when the registry's differs (platforms chosen, an older push).
    upstream_digest: str = ""
    platforms: tuple[str, ...] = ()
    # The release's snapshot tag of this image (TAG-RELEASE), when the sync makes one.
    snapshot: str = ""

    @property
    def failed(self) -> bool:
        return self.status == FAILED


def image_list(settings: ImageSettings, tags: Mapping[str, Iterable[str]] | None = None) -> list[Image]:
    """Every image the settings name, in order and once: names, then each service at the tag. With a tag
    filter, a service or name without a tag is every tag ``tags`` lists of its repository that matches (none
    while they are not known)."""
    entries = [*settings.names, *((f"{service}:{settings.tag}" if not settings.tag_filter else service) for service in settings.services)]
    images = []
    for entry in entries:
        if ":" in entry.rsplit("/", 1)[-1]:
            path, _, tag = entry.rpartition(":")
            images.append(Image(qualified(settings, path), tag))
        elif settings.tag_filter:
            path = qualified(settings, entry)
            images += [Image(path, tag) for tag in matching_tags(settings, (tags or {}).get(path, ()))]
        else:
            images.append(Image(qualified(settings, entry), settings.tag or "latest"))
    return list(dict.fromkeys(images))


def qualified(settings: ImageSettings, path: str) -> str:
    """A name with its namespace (the list's, when it names none)."""
    return path if "/" in path else f"{settings.namespace}/{path}"


def filtered_repositories(settings: ImageSettings) -> list[str]:
    """The repositories whose tags a tag filter chooses among (the list's untagged services and names)."""
    if not settings.tag_filter:
        return []
    untagged = [name for name in settings.names if ":" not in name.rsplit("/", 1)[-1]] + list(settings.services)
    return list(dict.fromkeys(qualified(settings, name) for name in untagged))


def matching_tags(settings: ImageSettings, tags: Iterable[str]) -> list[str]:
    """The tags the filter keeps (those starting with ``tag`` too, when one is given), sorted; a tag that is not
    one (a registry's answer) is never kept."""
    pattern = re.compile(settings.tag_filter)
    kept = [
        tag for tag in tags
        if isinstance(tag, str) and grammar.IMAGE_TAG.fullmatch(tag) and pattern.search(tag)
        and tag.startswith(settings.tag or "")
    ]
    return sorted(set(kept))


def upstream_base(settings: ImageSettings) -> str:
    return ("http://" if settings.insecure else "https://") + settings.registry


def upstream_logins(settings: ImageSettings, password: str | None = None) -> list[list[str]]:
    """A private upstream's login ([[BASE, USER, PASSWORD]]), its password read from its file when not given."""
    if not settings.username:
        return []
    if password is None:
        with open(settings.password_file, encoding="utf-8") as secret:
            password = secret.read().strip()
    return [[upstream_base(settings), settings.username, password]]


def upstream_limits(settings: ImageSettings) -> dict:
    """The cap on requests in flight to the upstream, for a program's request."""
    return {"limits": {settings.registry: settings.max_requests}}
