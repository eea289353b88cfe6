"""Where each node pulls from: read every node's /etc/hosts and its view of the instances, assign, plan.

The facts of one node cannot balance all of them, so with ``registry.hostname``
configure-targets first surveys every node (one exec each: its /etc/hosts and
a /v2/ probe of every instance), computes the assignment with the pure
``assign`` function, and then configures each node with its own placement.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence

from ..engine.address import AddressUnknown, Instance, RegistryAddress
from ..engine.context import Placement, StepContext
from ..engine.fanout import HostTask, fan_out
from ..engine.hostrun import HostRun
from ..engine.plan import StepPlan
from ..inventory import Host
from ..remote.facts import HostFacts, Section, Texts, files
from .assign import assign, healthy_set
from .hosts_file import ETC_HOSTS, HostsFileError, current_address, hosts_change

PROBE_SECONDS = 3
STEP = "place-node"


def health_section(instances: Sequence[Instance], scheme: str, port: int) -> Section:
    """Shell: GET /v2/ on every instance at once, a short timeout each; "NAME CODE" lines.

    Liveness only (``-k``): the pull check that follows verifies TLS by the registry's name.
    """
    probes = "\n".join(
        f"( c=$(curl -sk -m {PROBE_SECONDS} -o /dev/null -w '%{{http_code}}' "
        f"{shlex.quote(f'{scheme}://{instance.address}:{port}/v2/')} 2>/dev/null); "
        f"echo {shlex.quote(instance.name)} \"${{c:-000}}\" ) &"
        for instance in instances
    )
    shell = f"s instances\n{probes}\nwait"

    def parse(texts: Texts, facts: HostFacts) -> None:
        for line in texts.get("instances", "").splitlines():
            name, _, code = line.strip().partition(" ")
            if name:
                # 401: a registry that asks for its login answers too.
                facts.instance_answers[name] = code in ("200", "401")

    return Section("instances", shell, parse)


def survey_sections(instances: Sequence[Instance], scheme: str, port: int) -> tuple[Section, ...]:
    return (files(ETC_HOSTS), health_section(instances, scheme, port))


def placements(
    nodes: Sequence[str],
    instances: Sequence[Instance],
    surveyed: dict[str, HostFacts],
    hostname: str,
    rebalance: bool = False,
) -> dict[str, Placement]:
    """Each surveyed node's placement, with a note where it moves (and why)."""
    by_address = {instance.address: instance.name for instance in instances}
    address_of = {instance.name: instance.address for instance in instances}
    names = [instance.name for instance in instances]
    current = {
        node: by_address.get(current_address(facts.files.get(ETC_HOSTS), hostname), "")
        for node, facts in surveyed.items()
    }
    healthy = healthy_set(names, {node: facts.instance_answers for node, facts in surveyed.items()})
    chosen = assign([node for node in nodes if node in surveyed], names, healthy, current, rebalance)
    placed = {}
    for node, name in chosen.items():
        before = current.get(node, "")
        note = ""
        if before and before != name:
            why = "does not answer /v2/" if before not in healthy else ("--rebalance" if rebalance else "spread")
            note = f"moved from {before} ({why})"
        placed[node] = Placement(name, address_of[name], note)
    return placed


def place_node(facts: HostFacts, ctx: StepContext) -> StepPlan:
    """The node's /etc/hosts line mapping registry.hostname to its instance (no engine reload)."""
    plan = StepPlan(STEP)
    placement, hostname = ctx.placement, ctx.inventory.registry.hostname
    if placement is None or not hostname:
        return plan
    try:
        change = hosts_change(facts.files.get(ETC_HOSTS), placement.address, hostname)
    except HostsFileError as error:
        plan.error = str(error)
        return plan
    target = f"{hostname} -> {placement.name} ({placement.address})"
    if change:
        plan.files.append(change)
        plan.notes.append(f"{target}{'; ' + placement.note if placement.note else ''}")
    return plan


def survey_and_place(
    nodes: Sequence[Host], address: RegistryAddress, ctx: StepContext, config, parallel: int, rebalance: bool
) -> dict[str, Placement]:
    """Survey ``nodes`` in parallel (quietly; a node that fails here fails on its own row later), then place them."""
    try:
        instances = address.instances()
    except AddressUnknown:
        return {}  # every node's row says why
    surveyed: dict[str, HostFacts] = {}
    sections = survey_sections(instances, ctx.scheme, ctx.inventory.registry.port)

    def record(run: HostRun) -> None:
        surveyed[run.host.name] = run.facts

    task = HostTask(ctx, record, lambda _: sections, address, config, "survey", address_required=False)
    task.quiet = True
    fan_out(nodes, task, parallel)
    return placements([node.name for node in nodes], instances, surveyed, ctx.inventory.registry.hostname, rebalance)
