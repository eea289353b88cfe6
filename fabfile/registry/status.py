"""Host status rows: what each host has and sees of the registry, as a table or JSON."""

from __future__ import annotations

from dataclasses import dataclass, field

from tabulate import tabulate

from ..engines import installed
from ..engines.docker import config as dc
from ..engines.docker.paths import DAEMON_JSON
from ..engines.docker.paths import NAME as DOCKER
from ..kolla.globals_yaml import kolla_insecure_registry
from ..model.facts import HostFacts
from ..model.inventory import Host, Inventory
from .diagnose import diagnose
from .reach import tls_verified
from .tls import RENEW_DAYS

DEPLOY, TARGET, REPLICA = "deploy", "target", "replica"
# The deployment host listed among the targets too: one row, checked as both.
BOTH = f"{DEPLOY}+{TARGET}"


def host_role(inventory: Inventory, host: Host) -> str:
    """deploy, target, or both (a deployment host that is also a Kolla node); replica for another instance."""
    if inventory.is_replica(host) and host not in inventory.targets:
        return REPLICA
    if not inventory.is_deploy_host(host):
        return TARGET
    return BOTH if any(inventory.is_deploy_host(target) for target in inventory.targets) else DEPLOY


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
    podman: str = ""
    trusted: bool | None = None
    registry_answers: bool | None = None
    registry_error: str = ""
    repositories: list[str] = field(default_factory=list)
    # A secure registry: the server certificate's days left (deployment host), TLS verified (nodes).
    tls: str = ""
    # What kolla-ansible's bootstrap-servers would break here (see kolla_note).
    kolla: str = ""
    # With registry.hostname: the instance this node's /etc/hosts maps the name to (and ", fallback"
    # when it is outside the node's zone); the host's zone.
    instance: str = ""
    zone: str = ""
    # How many of the images it should hold it holds ("12/15"; "" when no image list is known).
    images: str = ""
    # A TLS registry an engine here treats as insecure anyway (no certificate check): each entry, where.
    insecure: list[str] = field(default_factory=list)
    # What anyone who reaches the registry may do, and the setting that stops it ("" with TLS and a login).
    exposure: str = ""
    # The releases whose snapshot tags of its images it holds ("B 30/30 (pinned), A 30/30").
    release: str = ""


def trusted(facts: HostFacts, registry: str) -> bool | None:
    """Whether every engine's config trusts ``registry`` (Docker: daemon.json or DOCKER_OPTS flags;
    podman: registries.conf); None: one of them cannot be read."""
    answers = [engine.trusted(facts, registry) for engine in installed(facts)]
    if None in answers:
        return None
    return all(answers) if answers else False


def insecure_entries(facts: HostFacts, registry: str) -> list[str]:
    """What makes an engine here treat the TLS ``registry`` as insecure, each ``ENTRY (WHERE)``."""
    return [str(entry) for engine in installed(facts) for entry in engine.insecure_entries(facts, registry)]


def tls_state(facts: HostFacts, role: str, insecure: list[str] | None = None) -> str:
    """What a secure registry's TLS looks like from this host: a downgrade, days left of its certificate,
    or the check."""
    if insecure:
        return f"NOT checked: treated as insecure by {'; '.join(insecure)} (fab configure-targets names the fix)"
    if role != TARGET and "days" in facts.registry.tls:
        days = facts.registry.tls["days"]
        return f"{days} days left" + (", renew due" if days < RENEW_DAYS else "")
    if not facts.reach.tls:
        return ""
    if tls_verified(facts):
        return "verified"
    return facts.reach.tls + (f" ({diagnose(facts.reach.tls)})" if diagnose(facts.reach.tls) else "")


def host_status(
    host: Host, role: str, facts: HostFacts, registry: str, answer: dict, secure: bool = False, exposure: str = ""
) -> HostStatus:
    """The row of a host that answered: its facts, and what it saw of the registry (``answer``)."""
    answers = answer.get("status") in (200, 401) and str(answer.get("api", "")).startswith("registry/2")
    insecure = insecure_entries(facts, registry) if secure and registry else []
    return HostStatus(
        host=host.name,
        role=role,
        address=host.address,
        reachable=True,
        os=facts.system.os_name,
        docker=facts.engine(DOCKER).version,
        docker_running=facts.engine(DOCKER).answers,
        podman=facts.engine("podman").version,
        trusted=(tls_verified(facts) and not insecure if secure else trusted(facts, registry)) if registry else None,
        registry_answers=answers if registry else None,
        registry_error=str(answer.get("error") or ""),
        repositories=list(answer.get("repositories") or []),
        tls=tls_state(facts, role, insecure) if secure else "",
        insecure=insecure,
        exposure=exposure,
    )


def kolla_note(facts: HostFacts, role: str, registry: str, secure: bool, globals_text: str | None) -> str:
    """What kolla-ansible's bootstrap-servers would break here, in one short line; "" for nothing.

    It writes daemon.json whole (bridge none, iptables false, insecure-registries
    only ``docker_registry`` when ``docker_registry_insecure``) and restarts Docker,
    on Kolla nodes: the targets, and a deployment host listed among them. Its
    registry is named on the deployment host all the same: adding it later is common.
    ``globals_text``: the deployment host's globals.yml (None: not read).
    """
    notes = [_registry_note(facts)] if role != TARGET else []
    if registry and not secure and role != DEPLOY:
        notes.append(_trust_note(facts, registry, kolla_insecure_registry(globals_text)))
    return "; ".join(note for note in notes if note)


def with_kolla_notes(
    rows: list[HostStatus], facts_of: dict[str, HostFacts], registry: str, secure: bool, globals_path: str
) -> None:
    """Each reached host's ``kolla`` note, once all are read.

    A target's note depends on the deployment host's globals.yml.
    """
    deploy = next((facts_of[row.host] for row in rows if row.role != TARGET and row.host in facts_of), None)
    globals_text = deploy.files.get(globals_path) if deploy else None
    for row in rows:
        if row.host in facts_of:
            row.kolla = kolla_note(facts_of[row.host], row.role, registry, secure, globals_text)


def published(container: dict | None) -> bool:
    """Whether the registry container publishes its port through Docker's bridge (``-p``)."""
    config = (container or {}).get("HostConfig") or {}
    return config.get("NetworkMode") != "host" and bool(config.get("PortBindings"))


def _registry_note(facts: HostFacts) -> str:
    if not published(facts.registry.container):
        return ""
    try:
        daemon = dc.load_daemon_json(facts.files.get(DAEMON_JSON))
        off = dc.bridge_or_iptables_off(daemon, dc.dockerd_flags(facts))
    except dc.ConfigError:
        off = False
    if off:
        return "registry on -p, Docker has no bridge: fab deploy-host"
    return "registry on -p stops answering: fab deploy-host (network: host)"


def _trust_note(facts: HostFacts, registry: str, kolla_lists: str | None) -> str:
    try:
        listed, flagged = dc.insecure_registries(facts)
    except dc.ConfigError:
        return ""
    if flagged and kolla_lists != "":
        # dockerd refuses an option set both as a flag and in daemon.json.
        return "kolla's insecure-registries + these flags stop dockerd: configure-targets --repair"
    if dc.trusts(listed, registry) and kolla_lists != registry:
        return "trust lost: set docker_registry + docker_registry_insecure: true (fab kolla-globals)"
    return ""


def unreachable_status(host: Host, role: str, reason: str) -> HostStatus:
    return HostStatus(host=host.name, role=role, address=host.address, reachable=False, reason=reason)


def status_table(rows: list[HostStatus], registry: str) -> str:
    """The rows as a table, under the registry they were checked against; the columns only some
    setups have (images, release, zone, instance, tls, the kolla note) only when a row has a value there."""
    optional = [
        (name, [getattr(row, name) for row in rows])
        for name in ("images", "release", "zone", "instance", "tls", "kolla")
        if any(getattr(row, name) for row in rows)
    ]
    titles = {"kolla": "after kolla bootstrap-servers"}
    headers = ["host", "role", "reachable", "os", "engine", "trusted", "/v2/", "catalog"]
    headers += [titles.get(name, name) for name, _ in optional]
    table = [
        [
            row.host,
            row.role,
            "yes" if row.reachable else f"no: {row.reason}",
            row.os or "-",
            _engine(row),
            _trusted(row) if registry else "-",
            _answers(row) if registry else "-",
            _catalog(row),
        ]
        + [values[index] or "-" for _, values in optional]
        for index, row in enumerate(rows)
    ]
    kolla = bool(optional) and optional[-1][0] == "kolla"
    # The note is one line of advice: wider than the other columns.
    widths = [None, None, 40] + [30] * (len(headers) - 3 - kolla) + [90] * kolla
    shown = tabulate(table, headers=headers, disable_numparse=True, maxcolwidths=widths)
    exposure = next((row.exposure for row in rows if row.exposure), "")
    named = registry or "unknown (deployment host not reached; set registry.address)"
    return f"registry: {named}{f' ({exposure})' if exposure else ''}\n{shown}"


def _engine(row: HostStatus) -> str:
    """``docker 26.1.5``, ``podman 5.4.2``, ``docker 20.10.24+podman 4.3.1``; a Docker that does not answer says so."""
    if not row.reachable:
        return "-"
    if not row.docker and not row.podman:
        return "not installed"
    docker = f"docker {row.docker}{'' if row.docker_running else ' (not running)'}" if row.docker else ""
    return "+".join(part for part in (docker, f"podman {row.podman}" if row.podman else "") if part)


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
