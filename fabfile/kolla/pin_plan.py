"""kolla-globals --release: the pin file as a plan, written only when every image resolves at its snapshot tag.

Before kolla-ansible is pointed at a release, the registry is asked (from the
deployment host) for every image of the set at ``TAG-RELEASE``: a release
sync-images never made, or made for fewer images, is refused, naming what is
missing, and the pin stays as it was. ``--release none`` removes the pin.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from ..images.model import Image, Manifest
from ..model.context import StepContext
from ..model.facts import HostFacts
from ..model.plan import FileChange, StepPlan
from ..registry.api import answer, local_base, query
from .release_pin import (
    UNPIN,
    PinError,
    globals_files,
    later_files,
    pin_path,
    pin_values,
    pinned_release,
    render_pin,
)

STEP = "pin-release"
SHOWN = 3  # missing images named in the row; the rest counted


def snapshot_image(image: Image, release: str) -> Image:
    """``image`` at its snapshot tag in ``release``."""
    return Image(image.path, f"{image.tag}-{release}")


def snapshots_query(images: Sequence[Image], release: str, ctx: StepContext):
    """The section that asks the registry for every image at its snapshot tag."""
    wanted = [[local_base(ctx), image.path, snapshot_image(image, release).tag] for image in images]
    return query("snapshots", ctx, {"manifests": wanted})


def pin_planner(globals_path: str, release: str, images: Sequence[Image]) -> Callable[[HostFacts, StepContext], StepPlan]:
    """A planner for the pin beside ``globals_path``: ``release`` (every image of ``images`` checked in the
    registry first), or ``none`` to remove it."""

    def plan_pin(facts: HostFacts, ctx: StepContext) -> StepPlan:
        plan = StepPlan(STEP)
        path = pin_path(globals_path)
        if path in facts.unreadable:
            plan.error = f"{path}: {facts.unreadable[path]}; left as it is"
            return plan
        current = facts.files.get(path)
        if release == UNPIN:
            if current is None:
                plan.notes.append("no release pinned")
            else:
                plan.files.append(FileChange(path, current, None))
            return plan
        files = globals_files(facts.files, globals_path)
        try:
            values = pin_values(release, files)
        except PinError as error:
            plan.error = str(error)
            return plan
        late = later_files(files)
        missing = _missing(images, release, facts)
        if late:
            plan.error = f"{late[0]}: read after {path} and sets a tag: the pin would not have the last word; left as it was"
        elif isinstance(missing, str):
            plan.error = missing
        elif missing:
            shown = ", ".join(image.name for image in missing[:SHOWN]) + (", ..." if len(missing) > SHOWN else "")
            plan.error = (
                f"release {release}: {len(missing)} of {len(images)} images are not in the registry at their snapshot "
                f"tags ({shown}): run fab sync-images --release {release} first; the pin is left as it was"
            )
        else:
            after = render_pin(values)
            was = pinned_release(current)
            if after == current:
                plan.notes.append(f"pinned to release {release}")
            else:
                plan.files.append(FileChange(path, current, after))
                plan.notes.append(f"release {was} -> {release}" if was else f"pinned to release {release}")
        return plan

    return plan_pin


def _missing(images: Sequence[Image], release: str, facts: HostFacts) -> list[Image] | str:
    """The images the registry lacks at their snapshot tags, or why the registry could not say."""
    if not images:
        return []
    found = answer(facts, "snapshots")
    answers = [Manifest.from_answer(item) for item in found.get("manifests") or []]
    if len(answers) != len(images):
        return f"the registry did not say which snapshot tags it holds: {found.get('error') or 'no answer'}"
    failed = [(image, held) for image, held in zip(images, answers, strict=True) if held.status not in (200, 404)]
    if failed:
        image, held = failed[0]
        return f"the registry did not answer for {snapshot_image(image, release).name}: {held.error or held.status}"
    return [snapshot_image(image, release) for image, held in zip(images, answers, strict=True) if not held.exists]
