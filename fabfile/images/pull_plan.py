"""pull-images as a plan: which of its images a node lacks (or holds under another digest than the
registry's), and the job that pulls them through its engine, as ``kolla-ansible pull`` would."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from ..engines import installed, missing_reason, named
from ..engines.base import PRESENT, PULLED, ContainerEngine
from ..model.context import StepContext
from ..model.facts import HostFacts
from ..model.marks import marks
from ..model.outcome import FAILED
from ..model.plan import Done, Job, PlanError, StepPlan
from ..registry.diagnose import diagnose
from .model import Image
from .wanted import Wanted

STEP = "pull-images"


@dataclass(frozen=True)
class Pulled:
    """What one node did with one image."""

    image: Image
    status: str
    detail: str = ""


def pulling_engine(facts: HostFacts, engine: str = "") -> ContainerEngine | None:
    """The engine that pulls on this node: the one asked for, else its first (Docker before podman,
    kolla-ansible's default); None when the one asked for is not there."""
    if engine:
        chosen = named(engine)
        return chosen if chosen.installed(facts) else None
    engines = installed(facts)
    return engines[0] if engines else None


def host_images(
    plan: StepPlan, facts: HostFacts, ctx: StepContext, wanted: Wanted, engine: str, what: str
) -> tuple[tuple[Image, ...], ContainerEngine] | None:
    """The node's own images and the engine that works with them; None, with the plan's note or error
    saying why, when there is nothing to do (a host the set does not name) or no engine."""
    host = ctx.inventory.resolve(ctx.host_name)
    if not wanted.names_host(host):
        plan.notes.append(f"not a host of {wanted.source}: no images to {what}")
        return None
    cli = pulling_engine(facts, engine)
    if cli is None:
        plan.error = f"--engine {engine}: not installed on this node" if engine else missing_reason(ctx.host_name)
        return None
    return wanted.of(host), cli


def insecure_login(facts: HostFacts, ctx: StepContext, cli: ContainerEngine) -> str:
    """Why no login may go to this node's engine (a TLS registry it treats as insecure, so it would check
    no certificate); "" when it may, or no login is sent."""
    if not (ctx.login and ctx.inventory.registry.secure):
        return ""
    try:
        found = cli.insecure_entries(facts, ctx.registry)
    except PlanError as error:
        return str(error)
    if not found:
        return ""
    return (
        f"{cli.name} here treats {ctx.registry} as insecure ({'; '.join(map(str, found))}): no login sent; "
        "run fab configure-targets first"
    )


def current(image: Image, held: Mapping[str, list[str]], ref: str, digests: Mapping[Image, str]) -> bool:
    """Whether the node holds ``image`` as the registry has it (by digest; unknown digest: not current)."""
    digest = digests.get(image)
    return bool(digest) and digest in held.get(ref, [])


def largest_first(todo: dict[str, Image], sizes: Mapping[Image, int]) -> list[str]:
    """The refs to pull, the largest image first (unknown sizes last, in their order): the longest pulls
    start at once, so that a node's last seconds are not one big image alone on the link."""
    return sorted(todo, key=lambda ref: -sizes.get(todo[ref], 0))


@dataclass(frozen=True, eq=False)
class PullOrder:
    """What pull-images was asked: each host's images, the registry's digests (and sizes, in bytes) of
    them, how many at once on a node, retries, and the engine that pulls ("": the node's first)."""

    wanted: Wanted
    digests: Mapping[Image, str]
    per_node: int
    retries: int
    engine: str = ""
    sizes: Mapping[Image, int] = field(default_factory=dict)


def pull_planner(order: PullOrder):
    """The planner: pull what the node lacks of its images or holds under another digest, the largest
    first; say what it holds."""
    digests = order.digests

    def plan_pull(facts: HostFacts, ctx: StepContext) -> StepPlan:
        plan = StepPlan(STEP)
        found = host_images(plan, facts, ctx, order.wanted, order.engine, "pull")
        if found is None:
            return plan
        images, cli = found
        refused = insecure_login(facts, ctx, cli)
        if refused:
            plan.error = refused
            return plan
        held = facts.engine(cli.name).images
        refs = {image.at(ctx.registry): image for image in images}
        todo = {ref: image for ref, image in refs.items() if not current(image, held, ref, digests)}
        holds = f"holds {len(refs) - len(todo)}/{len(refs)}"
        plan.data = {"images": len(refs), "held": len(refs) - len(todo), "engine": cli.name}
        if not todo:
            plan.notes.append(holds)
            return plan
        names = ", ".join(image.name for image in todo.values())
        script = cli.pull_script(largest_first(todo, order.sizes), order.per_node, order.retries, ctx=ctx)
        if ctx.login:
            # As kolla-ansible logs in: Docker keeps it in root's ~/.docker/config.json, podman in
            # root's /run/containers/0/auth.json (both 0600).
            script = "\n".join([*cli.login(ctx), script])
        plan.jobs.append(
            Job(
                summary=f"{holds}; would pull {names}" if ctx.modes.check else f"{holds}; pull {len(todo)}",
                script=script,
                done=lambda output: pulled_done(output, refs, todo, ctx.inventory.registry.secure),
                diff="".join(f"+ {ref}\n" for ref in todo),
            )
        )
        return plan

    return plan_pull


def parse_pulls(output: str, todo: dict[str, Image]) -> list[Pulled]:
    """One ``Pulled`` per ref pulled, from the script's marks, in order."""
    found: dict[str, Pulled] = {}
    for text in marks(output):
        status, ref, *rest = text.split(" ", 2) + [""]
        if ref in todo:
            found[ref] = Pulled(todo[ref], status, rest[0].strip())
    return [found.get(ref) or Pulled(image, FAILED, "no answer from the node") for ref, image in todo.items()]


def pulled_done(output: str, wanted: dict[str, Image], todo: dict[str, Image], secure: bool) -> Done:
    """The node's row once pulled: what it holds now, and why an image failed (with the fix)."""
    pulls = parse_pulls(output, todo)
    failed = [p for p in pulls if p.status == FAILED]
    held = len(wanted) - len(failed)
    holds = f"holds {held}/{len(wanted)}"
    data = {"images": len(wanted), "held": held, "pulled": sum(1 for p in pulls if p.status == PULLED)}
    if failed:
        hints = dict.fromkeys(diagnose(p.detail, secure) for p in failed if diagnose(p.detail, secure))
        reasons = "; ".join(_failures(failed))
        return Done(f"{holds}; failed {reasons}" + "".join(f" ({hint})" for hint in hints), True, data=data)
    fresh = sum(1 for p in pulls if p.status != PRESENT)
    return Done(f"pulled {fresh}; {holds}" if fresh else holds, data=data, changed=bool(fresh))


def _failures(failed: list[Pulled]) -> list[str]:
    """Failures grouped by reason: a registry that is not trusted fails every image alike."""
    by_reason: dict[str, list[str]] = {}
    for pulled in failed:
        by_reason.setdefault(pulled.detail, []).append(pulled.image.name)
    return [
        f"{', '.join(names) if len(names) <= 2 else f'{len(names)} images ({names[0]}, ...)'}: {reason}"
        for reason, names in by_reason.items()
    ]
