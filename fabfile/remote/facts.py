"""Facts: what a host has, gathered in one SSH round trip from sections a task picks.

A ``Section`` pairs the shell that prints one fact (after its mark) with the
parser that reads it into ``HostFacts``, so a task asks for exactly the facts
its planners read and nothing else crosses the wire.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import shlex
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from .. import grammar
from .marks import MARK, sections

DAEMON_JSON = "/etc/docker/daemon.json"
DEFAULT_DOCKER = "/etc/default/docker"
DROPIN_DIR = "/etc/systemd/system/docker.service.d"
STATE_DIR = "/var/lib/kolla-registry"
PENDING = f"{STATE_DIR}/pending"
APT_STAMP = f"{STATE_DIR}/apt-updated"
# A secure registry's files on the deployment host: its CA and server certificate, its login.
TLS_DIR = "/etc/kolla-registry/tls"
CA_CERT, CA_KEY = f"{TLS_DIR}/ca.crt", f"{TLS_DIR}/ca.key"
SERVER_CERT, SERVER_KEY = f"{TLS_DIR}/server.crt", f"{TLS_DIR}/server.key"
AUTH_DIR = "/etc/kolla-registry/auth"
HTPASSWD, PASSWORD = f"{AUTH_DIR}/htpasswd", f"{AUTH_DIR}/password"
REGISTRY_USER = "kolla"
DOCKER_CONFIG_FILES = (DAEMON_JSON, DEFAULT_DOCKER, PENDING)
PREAMBLE = f"""export LC_ALL=C
s() {{ printf '\\n{MARK} %s\\n' "$1"; }}"""


@dataclass
class HostFacts:
    """What one host has, as far as the tasks care."""

    os: dict[str, str] = field(default_factory=dict)
    kernel: str = ""
    addresses: list[str] = field(default_factory=list)
    docker_version: str = ""
    docker_answers: bool = False
    # Podman has no daemon: its CLI's version is all there is to know of it.
    podman_version: str = ""
    unit: dict[str, str] = field(default_factory=dict)
    externally_managed: bool = False
    pip_version: str = ""
    packages: set[str] = field(default_factory=set)
    apt_lists_age: int = 0
    run_propagation: str = ""
    files: dict[str, str] = field(default_factory=dict)
    unreadable: dict[str, str] = field(default_factory=dict)
    container: dict | None = None
    image_id: str = ""
    verified: tuple[int, str] | None = None
    podman_verified: tuple[int, str] | None = None
    # A secure registry: the server certificate as the deployment host has it; a node's TLS check.
    tls: dict = field(default_factory=dict)
    names: list[str] = field(default_factory=list)
    registry_tls: str = ""
    # With registry.hostname: whether each registry instance answered /v2/ from this host.
    instance_answers: dict[str, bool] = field(default_factory=dict)

    @property
    def os_name(self) -> str:
        return self.os.get("PRETTY_NAME") or self.os.get("ID", "unknown OS")

    @property
    def engines(self) -> tuple[str, ...]:
        """The container engines installed: ``docker``, ``podman``, both (Docker first) or none."""
        return tuple(name for name, version in self._engine_versions if version)

    @property
    def engine(self) -> str:
        """The engines and their versions: ``docker 26.1.5``, ``podman 5.4.2``, ``docker 20.10.24+podman 4.3.1``."""
        return "+".join(f"{name} {version}" for name, version in self._engine_versions if version)

    @property
    def _engine_versions(self) -> tuple[tuple[str, str], ...]:
        return (("docker", self.docker_version), ("podman", self.podman_version))

    @property
    def dropins(self) -> dict[str, str]:
        prefix = DROPIN_DIR + "/"
        return {path: text for path, text in self.files.items() if path.startswith(prefix)}


class Texts(dict):
    """Each section's text by its mark; ``output`` is all of it, for sections whose text holds marks."""

    output = ""


@dataclass(frozen=True)
class Section:
    """One fact: the shell that prints it after ``s NAME``, and the parser that reads it back."""

    name: str
    shell: str
    parse: Callable[[Texts, HostFacts], None]


def script(wanted: Iterable[Section]) -> str:
    """The shell that prints every wanted section; it always exits 0."""
    shells = dict.fromkeys(section.shell for section in wanted)
    return "\n".join([PREAMBLE, *shells, "exit 0"]) + "\n"


def parse(output: str, wanted: Iterable[Section]) -> HostFacts:
    """The sections' output as ``HostFacts``."""
    texts = Texts(sections(output))
    texts.output = output
    facts = HostFacts()
    for section in wanted:
        section.parse(texts, facts)
    return facts


def fact(name: str, shell: str, attribute: str, read: Callable[[str], object]) -> Section:
    """A section that prints one thing after ``s NAME``, read into ``facts.ATTRIBUTE``."""

    def parse_into(texts: Texts, facts: HostFacts) -> None:
        setattr(facts, attribute, read(texts.get(name, "")))

    return Section(name, f"s {name}; {shell}", parse_into)


def _os_release(text: str) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in text.splitlines() if "=" in line and not line.startswith("#"))
    return {key.strip(): value.strip().strip('"') for key, value in pairs}


def version_word(text: str) -> str:
    match = re.search(r"(\d+\.\d+(?:\.\d+)?)", text)
    return match.group(1) if match else ""


def read_engine(texts: Texts, facts: HostFacts) -> None:
    """The engine's version: the server's when it answers, else the installed binary's.

    podman-docker's ``docker`` is podman: its version is podman's, not a Docker's.
    """
    server = texts.get("docker-server", "").strip()
    server = server if re.match(r"\d", server) else ""
    installed = texts.get("dockerd", "")
    facts.docker_answers = bool(server)
    facts.docker_version = server or ("" if "podman" in installed.lower() else version_word(installed))


def _unit(texts: Texts, facts: HostFacts) -> None:
    lines = texts.get("docker-unit", "").splitlines()
    facts.unit = dict(line.split("=", 1) for line in lines if "=" in line)


def _files(texts: Texts, facts: HostFacts) -> None:
    for name, body in texts.items():
        if name.startswith("file "):
            path = name[len("file ") :]
            if not grammar.matches(grammar.HOST_PATH, path):
                # A drop-in named with blanks or shell syntax: read by no planner, written by none.
                facts.unreadable[path] = "a file name this tool does not edit"
                continue
            raw = _decoded(body)
            try:
                facts.files[path] = raw.decode("utf-8")
            except UnicodeDecodeError:
                # Kept for the checks that only look; a planner must not edit what it cannot read.
                facts.files[path] = raw.decode("utf-8", "replace")
                facts.unreadable[path] = "not UTF-8 text"
        elif name.startswith("special "):
            facts.unreadable[name[len("special ") :]] = "not a regular file"


def _decoded(body: str) -> bytes:
    try:
        return base64.b64decode(body.strip(), validate=True)
    except binascii.Error:
        return b""


def _first_json(text: str) -> dict | None:
    try:
        value = json.loads(text) if text.strip() else None
    except json.JSONDecodeError:
        return None
    if isinstance(value, list):
        return value[0] if value else None
    return value


# A glob the shell expands: a host path whose last part may hold ``*``.
_GLOB = re.compile(r"(?!.*/\.\./)/[A-Za-z0-9._+@:/-]*/[A-Za-z0-9._+@:*-]+")


def files(*paths: str, globs: Iterable[str] = ()) -> Section:
    """Regular files (``paths``, and what ``globs`` match) as base64, each its own ``file PATH`` mark;
    others are named as special. A glob that matches nothing adds nothing."""
    patterns = tuple(globs)
    for pattern in patterns:
        if not _GLOB.fullmatch(pattern):
            raise ValueError(f"not a glob this tool expands on a host: {pattern!r}")
    listed = " ".join([*(shlex.quote(path) for path in paths), *patterns])
    shell = f"""for f in {listed}; do
  if [ -f "$f" ]; then s "file $f"; base64 -w0 "$f"; echo; elif [ -e "$f" ]; then s "special $f"; fi
done"""
    return Section("files", shell, _files)


def container(name: str) -> Section:
    return fact("container", f"docker inspect {shlex.quote(name)} 2>/dev/null", "container", _first_json)


def image(reference: str) -> Section:
    shell = f"docker image inspect --format '{{{{.Id}}}}' {shlex.quote(reference)} 2>/dev/null"
    return fact("image", shell, "image_id", str.strip)


OS = fact("os-release", "cat /etc/os-release 2>/dev/null", "os", _os_release)
KERNEL = fact("kernel", "uname -r", "kernel", str.strip)
ADDRESSES = fact("addresses", "hostname -I 2>/dev/null", "addresses", str.split)
DOCKER = Section(
    "docker",
    "s dockerd; dockerd --version 2>/dev/null || docker --version 2>/dev/null\n"
    "s docker-server; timeout 20 docker version --format '{{.Server.Version}}' 2>/dev/null",
    read_engine,
)
PODMAN = fact(
    "podman",
    "command -v podman >/dev/null 2>&1 && { timeout 20 podman version --format '{{.Client.Version}}' 2>/dev/null "
    "|| timeout 20 podman --version 2>/dev/null; }",
    "podman_version",
    lambda text: next(iter(text.split()[-1:]), ""),
)
UNIT = Section(
    "docker-unit",
    "s docker-unit; systemctl show docker -p ExecStart -p EnvironmentFiles -p MainPID -p ActiveState "
    "-p FragmentPath 2>/dev/null",
    _unit,
)
DOCKER_FILES = files(*DOCKER_CONFIG_FILES, globs=(f"{DROPIN_DIR}/*.conf",))
PEP668 = fact(
    "pep668",
    "python3 -c 'import os,sysconfig;print(os.path.exists(os.path.join("
    'sysconfig.get_path("stdlib"),"EXTERNALLY-MANAGED")))\' 2>/dev/null',
    "externally_managed",
    lambda text: text.strip() == "True",
)
PIP = fact("pip", "python3 -m pip --version 2>/dev/null", "pip_version", version_word)
PACKAGES = fact(
    "packages",
    "dpkg-query -W -f '${Package} ${db:Status-Status}\\n' 2>/dev/null",
    "packages",
    lambda text: {line.split()[0] for line in text.splitlines() if line.endswith(" installed")},
)
APT_AGE = fact(
    "apt-lists-age",
    f"t=$(stat -c %Y {APT_STAMP} /var/cache/apt/pkgcache.bin /var/lib/apt/lists 2>/dev/null "
    "| sort -n | tail -1); echo $(( $(date +%s) - ${t:-0} ))",
    "apt_lists_age",
    lambda text: int(text.strip() or 0),
)
RUN_PROPAGATION = fact("run-propagation", "findmnt -no PROPAGATION /run 2>/dev/null", "run_propagation", str.strip)
# What a Docker host's trust planners read: its unit and its config files.
DOCKER_CONFIG = (UNIT, DOCKER_FILES)
