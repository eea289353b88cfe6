"""status: every host at once, read-only: reachable, OS, Docker and podman, trust, the registry from there."""

from __future__ import annotations

from functools import partial

from invoke import Context

from .cli import (
    PARALLEL_HELP,
    host_task,
    inventory_or_exit,
    parallel_or_default,
    selected_hosts,
    setting,
    step_context,
)
from .docker import tls
from .docker.status import (
    HostStatus,
    host_role,
    host_status,
    status_json,
    status_table,
    unreachable_status,
    with_kolla_notes,
)
from .engine.address import RegistryAddress
from .engine.context import Modes
from .engine.fanout import HostTask, fan_out
from .engine.hostrun import HostRun, RemoteError
from .kolla.globals_yaml import GLOBALS_PATH
from .podman.registries import podman_files
from .remote import facts
from .remote.api import local_base, query_registry
from .replicas.hosts_file import ETC_HOSTS, current_address


def instance_of(host: facts.HostFacts, inventory, address: RegistryAddress) -> str:
    """The instance this host's /etc/hosts maps registry.hostname to ("" without one, or an unknown address)."""
    hostname = inventory.registry.hostname
    mapped = current_address(host.files.get(ETC_HOSTS), hostname) if hostname else ""
    if not mapped:
        return ""
    deploy = address.known_or_empty().address
    known = {deploy: inventory.deploy_host.name, **{r.address: r.name for r in inventory.registry.replicas}}
    return known.get(mapped, f"{mapped} (not an instance)")


def status_sections(ctx, globals_path: str = GLOBALS_PATH) -> tuple[facts.Section, ...]:
    """What a row shows: the OS, Docker and podman and their config, a secure registry's TLS from
    there, and what kolla-ansible's bootstrap-servers would meet (the registry container, globals.yml)."""
    engines = (facts.DOCKER, *facts.DOCKER_CONFIG, facts.PODMAN, podman_files(ctx))
    return (
        facts.OS,
        *engines,
        *tls.tls_sections(ctx),
        *tls.node_tls_sections(ctx),
        facts.container(ctx.inventory.registry.name),
        facts.files(globals_path),
        *((facts.files(ETC_HOSTS),) if ctx.inventory.registry.hostname else ()),
    )


@host_task(help={"json": "print JSON instead of the table", "parallel": PARALLEL_HELP})
def status(c: Context, json=False, parallel=0):
    """Show every host at once, read-only: reachable, OS, Docker, trust, /v2/ and the catalog."""
    # ``json`` is named for the --json flag.
    inventory = inventory_or_exit()
    hosts = selected_hosts(c, inventory, inventory.machines)
    rows: dict[str, HostStatus] = {}
    facts_of: dict[str, facts.HostFacts] = {}
    globals_path = setting(c, "globals_path", GLOBALS_PATH)

    def role(host) -> str:
        return host_role(inventory, host)

    def row(run: HostRun) -> None:
        registry = run.ctx.registry if run.ctx.registry_address else ""
        try:
            answer = query_registry(run, {"catalog": local_base(run.ctx)}) if registry else {}
        except RemoteError as error:
            answer = {"error": str(error)}
        secure = inventory.registry.secure
        rows[run.host.name] = host_status(run.host, role(run.host), run.facts, registry, answer, secure)
        rows[run.host.name].instance = instance_of(run.facts, inventory, address)
        facts_of[run.host.name] = run.facts

    address = RegistryAddress(inventory, c.config, serving=True)
    ctx = step_context(c, inventory, Modes(check=True))
    sections = partial(status_sections, globals_path=globals_path)
    task = HostTask(ctx, row, sections, address, c.config, "status", address_required=False)
    task.quiet = True  # the table (or JSON) is the only output
    outcomes = {o.host: o for o in fan_out(hosts, task, parallel_or_default(c, parallel))}
    shown = [
        rows.get(host.name) or unreachable_status(host, role(host), outcomes[host.name].message)
        for host in hosts
    ]
    registry = address.known_or_empty().address
    registry = f"{inventory.registry.hostname or registry}:{inventory.registry.port}" if registry else ""
    with_kolla_notes(shown, facts_of, registry, inventory.registry.secure, globals_path)
    print(status_json(shown, registry) if json else status_table(shown, registry), flush=True)
