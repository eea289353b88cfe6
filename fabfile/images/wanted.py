"""The images a run is about: every one (what sync-images copies), and each host's own (what it pulls).

From the inventory's list every host wants every image; from kolla-ansible each host wants
what ``kolla-ansible pull`` would pull there, and an image is copied once for all who need it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..model.inventory import Host
from .model import Image


@dataclass(frozen=True)
class Wanted:
    """Every image, in order, and each host's own (by its name or address); None: every host wants all."""

    images: tuple[Image, ...]
    by_host: dict[str, tuple[Image, ...]] | None = None
    # For kolla-ansible's set: where the list came from, for the rows ("kolla-ansible 23.0.0").
    source: str = ""
    # Each image's hosts, by name, for the sync table.
    needed_by: dict[Image, tuple[str, ...]] = field(default_factory=dict)

    def of(self, host: Host) -> tuple[Image, ...]:
        """The images ``host`` wants: its own set (none when the set does not name it), or all."""
        if self.by_host is None:
            return self.images
        return self.by_host.get(host.name) or self.by_host.get(host.address) or ()

    def names_host(self, host: Host) -> bool:
        """Whether the set says anything of ``host`` (every list does; kolla-ansible's names its hosts)."""
        return self.by_host is None or host.name in self.by_host or host.address in self.by_host


def every_host_wants(images: list[Image]) -> Wanted:
    """A list every host wants whole (the inventory's names and services)."""
    return Wanted(tuple(images))


def per_host(sets: dict[str, tuple[Image, ...]], aliases: dict[str, str], source: str) -> Wanted:
    """Each host's own images (``sets`` by host name; ``aliases``: an address -> its host's name)."""
    images = tuple(dict.fromkeys(image for own in sets.values() for image in own))
    needed_by: dict[Image, list[str]] = {}
    for host, own in sets.items():
        for image in own:
            needed_by.setdefault(image, []).append(host)
    by_host = dict(sets)
    by_host.update({address: sets[name] for address, name in aliases.items() if name in sets and address not in sets})
    return Wanted(images, by_host, source, {image: tuple(hosts) for image, hosts in needed_by.items()})


def at_release(wanted: Wanted, release: str) -> Wanted:
    """The same images at their snapshot tags in ``release`` (what a cloud pinned to it pulls); as they are
    without one."""
    if not release:
        return wanted

    def moved(images: tuple[Image, ...]) -> tuple[Image, ...]:
        return tuple(Image(image.path, f"{image.tag}-{release}") for image in images)

    by_host = {host: moved(images) for host, images in wanted.by_host.items()} if wanted.by_host is not None else None
    needed_by = {moved((image,))[0]: hosts for image, hosts in wanted.needed_by.items()}
    return Wanted(moved(wanted.images), by_host, f"{wanted.source or 'the image list'} at release {release}", needed_by)
