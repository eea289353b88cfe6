"""Docker daemon configuration: daemon.json, DOCKER_OPTS and unit drop-ins.

Pure functions over file texts and facts, so every rule here is tested without SSH.
"""

from __future__ import annotations

import ipaddress
import json
import re
import shlex

from ...model.facts import HostFacts
from ...model.plan import FileChange, PlanError, StepPlan
from .facts import dropins
from .paths import DAEMON_JSON, DEFAULT_DOCKER, DROPIN_DIR, NAME

MIN_DOCKER = (1, 10)
# Docker 1.12 split the daemon out as `dockerd` and read daemon.json reliably.
DOCKERD_SINCE = (1, 12)
# From 18.09 containerd runs under systemd and MountFlags must stay empty.
MOUNTFLAGS_BREAKS_SINCE = (18, 9)

MOUNTFLAGS_DROPIN = f"{DROPIN_DIR}/kolla.conf"
MOUNTFLAGS_TEXT = "[Service]\nMountFlags=shared\n"
ENV_DROPIN = f"{DROPIN_DIR}/kolla-registry-env.conf"
ENV_TEXT = f"[Service]\nEnvironmentFile=-{DEFAULT_DOCKER}\n"
EXEC_DROPIN = f"{DROPIN_DIR}/kolla-registry-opts.conf"

# dockerd --validate checks a config file without starting (Docker 23 and newer).
VALIDATE_SINCE = (23,)
VALIDATE = "dockerd --validate --config-file"

_REGISTRY_FLAG = re.compile(r"^--insecure-registry(?:=(.*))?$")


class ConfigError(PlanError):
    """A Docker config file that cannot be read safely; names the file."""


def version(text: str) -> tuple[int, ...]:
    """``"20.10.24+dfsg1"`` -> ``(20, 10, 24)``; empty for no version."""
    match = re.match(r"\s*(\d+(?:\.\d+)*)", text or "")
    return tuple(int(part) for part in match.group(1).split(".")) if match else ()


def load_daemon_json(text: str | None) -> dict:
    """The daemon.json object; an absent or blank file is an empty one."""
    if text is None or not text.strip():
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise ConfigError(
            f"{DAEMON_JSON}: not valid JSON (line {error.lineno}: {error.msg}); left as it is"
        ) from None
    if not isinstance(value, dict):
        raise ConfigError(f"{DAEMON_JSON}: expected a JSON object; left as it is")
    return value


def with_insecure_registries(text: str | None, addresses: list[str]) -> str | None:
    """daemon.json text that also trusts ``addresses``; unchanged text if it does."""
    config = load_daemon_json(text)
    current = config.get("insecure-registries", [])
    if not isinstance(current, list):
        raise ConfigError(f"{DAEMON_JSON}: insecure-registries is not a list; left as it is")
    missing = list(dict.fromkeys(address for address in addresses if not trusts(current, address)))
    if not missing:
        return text
    config["insecure-registries"] = current + missing
    return json.dumps(config, indent=2) + "\n"


def without_insecure_registry(text: str | None, registry: str) -> str | None:
    """daemon.json text without the entries naming ``registry`` exactly (``ADDR:PORT``, ``http://ADDR:PORT``).

    An emptied list stays, as ``[]``: a reload applies insecure-registries only
    when the key is set, so removing it would leave the registry insecure.
    """
    config = load_daemon_json(text)
    listed = config.get("insecure-registries") or []
    if not any(names_exactly(entry, registry) for entry in listed):
        return text
    config["insecure-registries"] = [entry for entry in listed if not names_exactly(entry, registry)]
    return json.dumps(config, indent=2) + "\n"


def trusts(entries: list, registry: str) -> bool:
    """Whether insecure-registries ``entries`` cover ``registry`` (``ADDR:PORT``) as dockerd reads them."""
    return any(covers(entry, registry) for entry in entries)


def covers(entry: object, registry: str) -> bool:
    """Whether one insecure-registries entry makes dockerd treat ``registry`` (``ADDR:PORT``) as insecure.

    An entry is a registry (``ADDR:PORT``, also written ``http://ADDR:PORT``, whose scheme
    dockerd drops) or a CIDR block, which covers every registry whose address is in it.
    """
    text = _bare(entry)
    if text == registry:
        return True
    if "/" not in text:
        return False
    try:
        return ipaddress.ip_address(registry.rsplit(":", 1)[0]) in ipaddress.ip_network(text, strict=False)
    except ValueError:
        return False


def names_exactly(entry: object, registry: str) -> bool:
    """Whether an entry names exactly ``registry``, as this tool writes it (``http://`` or not)."""
    return _bare(entry) == registry


def _bare(entry: object) -> str:
    return str(entry).strip().removeprefix("http://").removeprefix("https://").rstrip("/")


def docker_opts(text: str | None) -> list[str]:
    """The arguments in the last ``DOCKER_OPTS=`` line (the one that wins)."""
    value = ""
    for line in (text or "").splitlines():
        match = re.match(r"\s*(?:export\s+)?DOCKER_OPTS=(.*)$", line)
        if match:
            parts = _split(match.group(1), comments=True)
            value = parts[0] if parts else ""
    return _split(value)


def _split(text: str, comments: bool = False) -> list[str]:
    try:
        return shlex.split(text, comments=comments)
    except ValueError as error:
        raise ConfigError(f"{DEFAULT_DOCKER}: DOCKER_OPTS cannot be read ({error}); left as it is") from None


def flag_registries(args: list[str]) -> list[str]:
    """Registries named by ``--insecure-registry`` flags in ``args``."""
    found = []
    for index, arg in enumerate(args):
        match = _REGISTRY_FLAG.match(arg)
        if match and match.group(1):
            found.append(match.group(1))
        elif match and index + 1 < len(args):
            found.append(args[index + 1])
    return found


def with_docker_opts_registry(text: str | None, address: str) -> str | None:
    """/etc/default/docker text whose DOCKER_OPTS also trusts ``address``.

    The procedure appended a second ``DOCKER_OPTS=`` line, which silently
    drops every option set before it; this edits the line that wins instead.
    """
    args = docker_opts(text)
    if trusts(flag_registries(args), address):
        return text
    new_line = "DOCKER_OPTS=" + shlex.quote(shlex.join([*args, "--insecure-registry", address]))
    lines = (text or "").splitlines()
    for index in reversed(range(len(lines))):
        if re.match(r"\s*(?:export\s+)?DOCKER_OPTS=", lines[index]):
            lines[index] = new_line
            break
    else:
        lines.append(new_line)
    return "\n".join(lines) + "\n"


def without_flag_registries(text: str | None, registry: str | None = None) -> str | None:
    """/etc/default/docker text with every ``--insecure-registry`` dropped (only those naming
    ``registry`` exactly, when given)."""
    args = docker_opts(text)
    kept, index = [], 0
    while index < len(args):
        match = _REGISTRY_FLAG.match(args[index])
        value = (match.group(1) or (args[index + 1] if index + 1 < len(args) else "")) if match else ""
        width = 1 if not match or match.group(1) else 2
        if not match or (registry is not None and not names_exactly(value, registry)):
            kept += args[index : index + width]
        index += width
    if kept == args:
        return text
    lines = [
        "DOCKER_OPTS=" + shlex.quote(shlex.join(kept))
        if re.match(r"\s*(?:export\s+)?DOCKER_OPTS=", line)
        else line
        for line in (text or "").splitlines()
    ]
    return "\n".join(lines) + "\n"


def exec_start_argv(unit_exec_start: str) -> list[str]:
    """The argv of ``systemctl show -p ExecStart`` output."""
    match = re.search(r"argv\[\]=(.*?) ;", unit_exec_start or "")
    return match.group(1).split() if match else []


def unit_reads_docker_opts(argv: list[str], environment_files: str, dropins: dict) -> bool:
    """Whether dockerd's unit expands $DOCKER_OPTS from /etc/default/docker."""
    expands = any(arg in ("$DOCKER_OPTS", "${DOCKER_OPTS}") for arg in argv)
    return expands and (DEFAULT_DOCKER in environment_files or ENV_DROPIN in dropins)


def effective_flags(argv: list[str], default_docker: str | None, reads_opts: bool) -> list[str]:
    """The flags dockerd is started with: its ExecStart plus DOCKER_OPTS."""
    own = [arg for arg in argv[1:] if not arg.startswith("$")]
    return own + (docker_opts(default_docker) if reads_opts else [])


def bridge_or_iptables_off(daemon_json: dict, flags: list[str]) -> bool:
    """True when Docker cannot publish ports (kolla-ansible's host setup)."""
    if daemon_json.get("iptables") is False or daemon_json.get("bridge") == "none":
        return True
    joined = " ".join(flags)
    return bool(re.search(r"--iptables[= ]false|--bridge[= ]none|-b[= ]none", joined))


def mountflags_dropins(dropins: dict[str, str]) -> list[str]:
    """Drop-ins that set ``MountFlags=shared`` (breaks Docker >= 18.09)."""
    return [path for path, text in sorted(dropins.items()) if _mountflags_line(text)]


def without_mountflags(text: str) -> str | None:
    """The drop-in without its MountFlags line; None when nothing else is left."""
    kept = [line for line in text.splitlines() if not _mountflags_line(line)]
    if all(not line.strip() or line.strip().startswith(("[", "#")) for line in kept):
        return None
    return "\n".join(kept) + "\n"


def exec_dropin_text(argv: list[str], docker_version: tuple[int, ...]) -> str:
    """A drop-in whose ExecStart is dockerd's, plus ``$DOCKER_OPTS``."""
    if argv:
        command = [arg for arg in argv if arg not in ("$DOCKER_OPTS", "${DOCKER_OPTS}")]
    elif docker_version >= DOCKERD_SINCE:
        command = ["/usr/bin/dockerd", "-H", "fd://"]
    else:
        command = ["/usr/bin/docker", "daemon", "-H", "fd://"]
    return "[Service]\nExecStart=\nExecStart=" + " ".join([*command, "$DOCKER_OPTS"]) + "\n"


def _mountflags_line(text: str) -> bool:
    return bool(re.search(r"^\s*MountFlags\s*=\s*shared\s*$", text, re.MULTILINE))


def daemon_json_or_error(facts: HostFacts, plan: StepPlan) -> dict | None:
    """The host's daemon.json object; None (with ``plan.error`` set) when it cannot be read."""
    try:
        return load_daemon_json(facts.files.get(DAEMON_JSON))
    except ConfigError as error:
        plan.error = str(error)
        return None


def dockerd_flags(facts: HostFacts) -> list[str]:
    """The flags dockerd runs with on this host: its unit's ExecStart, plus DOCKER_OPTS if it reads them."""
    service = facts.engine(NAME).service
    argv = exec_start_argv(service.get("ExecStart", ""))
    reads = unit_reads_docker_opts(argv, service.get("EnvironmentFiles", ""), dropins(facts))
    return effective_flags(argv, facts.files.get(DEFAULT_DOCKER), reads)


def insecure_registries(facts: HostFacts) -> tuple[list[str], list[str]]:
    """The registries Docker treats as insecure: in daemon.json, and as flags (DOCKER_OPTS, unit)."""
    listed = load_daemon_json(facts.files.get(DAEMON_JSON)).get("insecure-registries") or []
    return list(listed), flag_registries(dockerd_flags(facts))


def file_change(facts: HostFacts, path: str, after: str | None) -> FileChange:
    """The change from the host's ``path`` (as the facts show it) to ``after``.

    A new daemon.json is checked by dockerd itself first where it can (Docker 23 and newer).
    """
    checker = VALIDATE if path == DAEMON_JSON and version(facts.engine(NAME).version) >= VALIDATE_SINCE else ""
    return FileChange(path, facts.files.get(path), after, checker)
