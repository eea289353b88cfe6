"""What makes dockerd treat a TLS registry as insecure: daemon.json, its flags, and its own view.

dockerd skips the certificate checks of an insecure registry and falls back to
plain HTTP, login included: a TLS registry it covers is silently downgraded. An
entry covers the registry when it names it (``ADDR:PORT``, ``http://ADDR:PORT``)
or is a CIDR block holding its address; dockerd's ``docker info`` tells what it
really runs with (its built-in 127.0.0.0/8 too).
"""

from __future__ import annotations

import ipaddress

from ...model.facts import HostFacts
from ...model.paths import PENDING
from ..base import Insecure
from . import config as dc
from .facts import dropins
from .paths import DAEMON_JSON, DEFAULT_DOCKER, NAME

IN_DAEMON_JSON = f"{DAEMON_JSON} insecure-registries"
IN_DOCKER_OPTS = f"{DEFAULT_DOCKER} DOCKER_OPTS"
IN_UNIT = "docker.service's ExecStart"
# dockerd treats these as insecure whatever its config says.
BUILT_IN = ("127.0.0.0/8", "::1/128")
BUILT_IN_WHERE = "dockerd's built-in insecure range"
IN_DOCKERD = "dockerd's running config (docker info), in no file this tool reads"


def insecure_entries(facts: HostFacts, registry: str) -> list[Insecure]:
    """Every entry that makes dockerd treat ``registry`` as insecure; ConfigError when a file cannot be read."""
    service = facts.engine(NAME).service
    argv = dc.exec_start_argv(service.get("ExecStart", ""))
    reads_opts = dc.unit_reads_docker_opts(argv, service.get("EnvironmentFiles", ""), dropins(facts))
    sources = (
        (IN_DAEMON_JSON, dc.load_daemon_json(facts.files.get(DAEMON_JSON)).get("insecure-registries") or []),
        (IN_DOCKER_OPTS, dc.flag_registries(dc.docker_opts(facts.files.get(DEFAULT_DOCKER))) if reads_opts else []),
        (IN_UNIT, dc.flag_registries([arg for arg in argv[1:] if not arg.startswith("$")])),
    )
    found = [
        Insecure(str(entry), where, dc.names_exactly(entry, registry))
        for where, entries in sources
        for entry in (entries if isinstance(entries, list) else [])
        if dc.covers(entry, registry)
    ]
    return found + _dockerd_only(facts, registry, found)


def _dockerd_only(facts: HostFacts, registry: str, found: list[Insecure]) -> list[Insecure]:
    """What dockerd's own view adds: a CIDR no file gives it (its built-in loopback range), or the
    registry listed insecure though no file says so (not while a reload is pending: it will tell)."""
    view = facts.engine(NAME).registry_config
    extra = [
        Insecure(str(cidr), BUILT_IN_WHERE if str(cidr) in BUILT_IN else IN_DOCKERD, ours=False)
        for cidr in view.get("InsecureRegistryCIDRs") or []
        if dc.covers(cidr, registry) and not any(_same_network(cidr, known.entry) for known in found)
    ]
    index = (view.get("IndexConfigs") or {}).get(registry)
    pending = bool(facts.files.get(PENDING, "").strip())
    if isinstance(index, dict) and index.get("Secure") is False and not found and not extra and not pending:
        extra.append(Insecure(registry, IN_DOCKERD, ours=False))
    return extra


def _same_network(first: object, second: str) -> bool:
    """Whether two CIDR entries are one network (dockerd shows 10.0.0.0/8 for daemon.json's 10.1.2.3/8)."""
    try:
        return ipaddress.ip_network(str(first), strict=False) == ipaddress.ip_network(second, strict=False)
    except ValueError:
        return False


def downgrade_error(entry: Insecure, registry: str) -> str:
    """One line: what covers the registry, what that does, and the fix."""
    address = registry.rsplit(":", 1)[0]
    if entry.where == BUILT_IN_WHERE:
        fix = f"dockerd always does so for {entry.entry}: set registry.address to a non-loopback address"
    elif entry.where == IN_DOCKERD:
        fix = "find where dockerd gets it (its --config-file, flags, or a reload not done) and remove it"
    elif entry.where == IN_UNIT:
        fix = f"remove it from {IN_UNIT} by hand (this tool does not edit units)"
    else:
        fix = f"remove it there, or narrow it to leave {address} out"
    return (
        f"{entry.entry} in {entry.where} makes dockerd treat the TLS registry {registry} as insecure "
        f"(no certificate check; plain HTTP fallback, login included): {fix}"
    )
