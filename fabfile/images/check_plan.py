"""check-images as a plan that changes nothing: each image a host needs resolves from that host,
through its engine, with the registry's digest; what would make ``kolla-ansible pull`` fail is named."""

from __future__ import annotations

from collections.abc import Mapping

from ..model.context import StepContext
from ..model.facts import HostFacts
from ..model.plan import StepPlan
from ..registry.diagnose import diagnose
from .model import Image
from .pull_plan import host_images
from .wanted import Wanted

STEP = "check-images"
OK, STALE, MISSING, WRONG, UNAUTHORIZED, UNTRUSTED, BROKEN = (
    "ok", "older than upstream", "missing", "wrong digest", "not authorized", "not trusted", "failed"
)
# What the engine or the registry says, and what it means; checked in order.
SAID = (
    (("x509", "certificate", "http response to https client", "tls:"), UNTRUSTED),
    (("unauthorized", "authentication required", "no basic auth", "denied", "incorrect username"), UNAUTHORIZED),
    (("manifest unknown", "not found", "name unknown"), MISSING),
)


def verdict(code: int, said: str, registry: str, upstream: str) -> str:
    """What one image's resolution means, given the registry's and the upstream's digests ("" unknown)."""
    if code == 200:
        if not registry or said != registry:
            return WRONG
        return STALE if upstream and upstream != registry else OK
    lowered = said.lower()
    for needles, meaning in SAID:
        if any(needle in lowered for needle in needles):
            return meaning
    return {404: MISSING, 401: UNAUTHORIZED, 403: UNAUTHORIZED}.get(code, BROKEN)


def check_planner(wanted: Wanted, digests: Mapping[Image, str], upstream: Mapping[Image, str], engine: str = ""):
    """The planner: a failure naming every image that would fail the pull, else how many resolve."""

    def plan_check(facts: HostFacts, ctx: StepContext) -> StepPlan:
        plan = StepPlan(STEP)
        found_images = host_images(plan, facts, ctx, wanted, engine, "check")
        if found_images is None:
            return plan
        images, cli = found_images
        resolved = facts.engine(cli.name).resolved
        found: dict[str, list[Image]] = {}
        why: dict[str, str] = {}
        for image in images:
            code, said = resolved.get(image.at(ctx.registry), (0, "no answer from the node"))
            meaning = verdict(code, said, digests.get(image, ""), upstream.get(image, ""))
            found.setdefault(meaning, []).append(image)
            if meaning not in (OK, STALE, WRONG):
                why.setdefault(meaning, said)
        plan.data = {"images": {meaning: [image.name for image in images] for meaning, images in found.items()}}
        plan.error = failures(found, why, ctx.inventory.registry.secure)
        if not plan.error:
            total = sum(len(images) for images in found.values())
            plan.notes.append(f"{total} images resolve with the registry's digests{_stale(found)}")
        return plan

    return plan_check


def failures(found: dict[str, list[Image]], why: dict[str, str], secure: bool) -> str | None:
    """One line naming what would fail ``kolla-ansible pull`` here, kind by kind, with the fix."""
    parts = []
    for meaning in (UNTRUSTED, UNAUTHORIZED, MISSING, WRONG, BROKEN):
        images = found.get(meaning) or []
        if images:
            names = ", ".join(image.name for image in images[:3]) + (f" and {len(images) - 3} more" if len(images) > 3 else "")
            said = why.get(meaning, "")
            hint = diagnose(said, secure) if said else ""
            detail = f" ({hint or said})" if said and meaning != MISSING else ""
            parts.append(f"{meaning}: {names}{detail}")
    if found.get(MISSING):
        parts.append("run fab sync-images")
    return "; ".join(parts) or None


def _stale(found: dict[str, list[Image]]) -> str:
    older = found.get(STALE) or []
    return f"; {len(older)} older than upstream's (run fab sync-images)" if older else ""
