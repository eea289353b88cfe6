"""status: every host at once, read-only: reachable, OS, Docker, trust, the registry from there."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field

from invoke import Context, task
from tabulate import tabulate

from . import dockerconfig as dc
from .deploy import hosts_for, inventory_or_exit, open_run
from .facts import DAEMON_JSON, HostFacts
from .images import ask, insecure_registries
from .inventory import Host, Inventory
from .report import FAILED, Outcome
from .runner import HostRun, StepFailed

DEPLOY, TARGET = "deploy", "target"


@dataclass
class HostStatus:
    """One host's row; None where it could not be told (the host was not reached)."""

    host: str
    role: str
    address: str
    reachable: bool
    reason: str = ""
    os: str = ""
    docker: str = ""
    docker_running: bool = False
    trusted: bool | None = None
    registry_answers: bool | None = None
    registry_error: str = ""
    repositories: list[str] = field(default_factory=list)


def trusted(facts: HostFacts, registry: str) -> bool | None:
    """Whether Docker's config (daemon.json or DOCKER_OPTS flags) trusts ``registry``; None: unreadable."""
    try:
        from_json, from_flags = insecure_registries(facts)
    except dc.ConfigError:
        return None
    return registry in (*from_json, *from_flags)


def host_status(host: Host, role: str, facts: HostFacts, registry: str, answer: dict) -> HostStatus:
    """The row of a host that answered: its facts, and what it saw of the registry (``answer``)."""
    answers = answer.get("status") == 200 and str(answer.get("api", "")).startswith("registry/2")
    return HostStatus(
        host=host.name,
        role=role,
        address=host.address,
        reachable=True,
        os=facts.os_name,
        docker=facts.docker_version,
        docker_running=facts.docker_answers,
        trusted=trusted(facts, registry) if registry else None,
        registry_answers=answers if registry else None,
        registry_error=str(answer.get("error") or ""),
        repositories=list(answer.get("repositories") or []),
    )


def unreachable_status(host: Host, role: str, reason: str) -> HostStatus:
    return HostStatus(host=host.name, role=role, address=host.address, reachable=False, reason=reason)


def status_table(rows: list[HostStatus], registry: str) -> str:
    """The rows as a table, under the registry they were checked against."""
    headers = ["host", "role", "reachable", "os", "docker", "trusted", "/v2/", "catalog"]
    table = [
        [
            row.host,
            row.role,
            "yes" if row.reachable else f"no: {row.reason}",
            row.os or "-",
            _docker(row),
            _trusted(row) if registry else "-",
            _answers(row) if registry else "-",
            _catalog(row),
        ]
        for row in rows
    ]
    shown = tabulate(table, headers=headers, disable_numparse=True, maxcolwidths=[None, None, 40] + [30] * 5)
    return f"registry: {registry or 'unknown (deployment host not reached; set registry.address)'}\n{shown}"


def status_json(rows: list[HostStatus], registry: str) -> str:
    return json.dumps({"registry": registry, "hosts": [asdict(row) for row in rows]}, indent=2)


def _docker(row: HostStatus) -> str:
    if not row.reachable:
        return "-"
    if not row.docker:
        return "not installed"
    return row.docker if row.docker_running else f"{row.docker} (not running)"


def _trusted(row: HostStatus) -> str:
    if not row.reachable:
        return "-"
    return {True: "yes", False: "no", None: f"? ({DAEMON_JSON} unreadable)"}[row.trusted]


def _answers(row: HostStatus) -> str:
    if not row.reachable:
        return "-"
    return "yes" if row.registry_answers else f"no: {row.registry_error}".rstrip(": ")


def _catalog(row: HostStatus) -> str:
    if not row.registry_answers:
        return "-"
    count = len(row.repositories)
    return row.registry_error or f"{count} image{'' if count == 1 else 's'}"


def _registry(inventory: Inventory, deploy: HostRun | Outcome | None) -> str:
    if inventory.registry.address:
        return f"{inventory.registry.address}:{inventory.registry.port}"
    return deploy.ctx.registry if isinstance(deploy, HostRun) and deploy.ctx.registry_address else ""


def _open(host: Host, inventory: Inventory, c: Context) -> HostRun | Outcome:
    started = time.monotonic()
    try:
        return open_run(host, inventory, True, False, False, c)
    except Exception as error:  # noqa: BLE001 - a report on every host, whatever one of them does
        return Outcome(
            host.name, "connect", FAILED, f"{type(error).__name__}: {error}", time.monotonic() - started
        )


def _row(host: Host, role: str, run: HostRun | Outcome, registry: str) -> HostStatus:
    if isinstance(run, Outcome):
        return unreachable_status(host, role, run.message)
    try:
        answer = ask(run, {"catalog": f"http://{registry}"}) if registry else {}
    except StepFailed as error:
        answer = {"error": str(error)}
    finally:
        run.close()
    return host_status(host, role, run.facts, registry, answer)


@task(
    help={
        "json": "print JSON instead of the table",
        "parallel": "how many hosts to ask at once (default: kolla_registry.parallel, 10)",
    }
)
def status(c: Context, json=False, parallel=0):
    """Show every host at once, read-only: reachable, OS, Docker, trust, /v2/ and the catalog."""
    # ``json`` is named for the --json flag; the json module is only used outside this function.
    inventory = inventory_or_exit()
    hosts = hosts_for(c, inventory, (inventory.deploy_host, *inventory.targets))
    deploy = inventory.deploy_host
    # The registry's address may have to come from the deployment host's facts.
    asked = list(hosts) if deploy in hosts or inventory.registry.address else [*hosts, deploy]
    workers = max(1, parallel or c.config.get("kolla_registry", {}).get("parallel", 10))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        runs = dict(zip(asked, pool.map(lambda h: _open(h, inventory, c), asked)))
        registry = _registry(inventory, runs.get(deploy))
        if deploy not in hosts and isinstance(runs.get(deploy), HostRun):
            runs.pop(deploy).close()
        roles = [DEPLOY if host == deploy else TARGET for host in hosts]
        rows = list(pool.map(lambda h, role: _row(h, role, runs[h], registry), hosts, roles))
    print(status_json(rows, registry) if json else status_table(rows, registry), flush=True)
