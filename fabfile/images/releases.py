"""Which release a host's images come from: the snapshot tags (``TAG-RELEASE``) of its images it holds."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping

from .model import Image


def held_releases(wanted: Iterable[Image], held: Mapping[str, list[str]], registry: str, pinned: str = "") -> str:
    """``B 30/30 (pinned), A 12/30``: for each release whose snapshot tags of ``wanted`` (the upstream's
    names) the host holds from ``registry``, how many; the cloud's ``pinned`` release first; "" for none."""
    images = list(dict.fromkeys(wanted))
    names = {image.name for image in images}
    counts: Counter[str] = Counter()
    for image in images:
        prefix = f"{registry}/{image.path}:{image.tag}-"
        for ref in held:
            release = ref[len(prefix) :] if ref.startswith(prefix) else ""
            # Another image of the list (nova:TAG-aarch64 beside nova:TAG) is no release of it.
            if release and f"{image.path}:{image.tag}-{release}" not in names:
                counts[release] += 1
    order = sorted(counts, key=lambda release: (release != pinned, -counts[release], release))
    shown = [f"{release} {counts[release]}/{len(images)}" + (" (pinned)" if release == pinned else "") for release in order]
    if pinned and pinned not in counts and images:
        shown.insert(0, f"{pinned} 0/{len(images)} (pinned)")
    return ", ".join(shown)
