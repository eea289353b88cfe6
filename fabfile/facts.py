"""Facts: what a host has, gathered in one SSH round trip and parsed purely."""

from __future__ import annotations

import base64
import json
import re
import shlex
from dataclasses import dataclass, field

MARK = "::kolla-registry::"
DAEMON_JSON = "/etc/docker/daemon.json"
DEFAULT_DOCKER = "/etc/default/docker"
DROPIN_DIR = "/etc/systemd/system/docker.service.d"
STATE_DIR = "/var/lib/kolla-registry"
PENDING = f"{STATE_DIR}/pending"
APT_STAMP = f"{STATE_DIR}/apt-updated"
WATCHED_FILES = (DAEMON_JSON, DEFAULT_DOCKER, PENDING)
# Sections every task reads: the marker function, docker's unit, and the config files.
PREAMBLE = f"""export LC_ALL=C
s() {{ printf '\\n{MARK} %s\\n' "$1"; }}"""
UNIT_AND_FILES = f"""s docker-unit; systemctl show docker -p ExecStart -p EnvironmentFiles -p MainPID -p ActiveState -p FragmentPath 2>/dev/null
for f in {" ".join(shlex.quote(path) for path in WATCHED_FILES)} {DROPIN_DIR}/*.conf; do
  [ -f "$f" ] || continue
  s "file $f"; base64 -w0 "$f"; echo
done"""


def script(container: str = "registry", image: str = "registry:2") -> str:
    """The shell script that prints every fact, one marked section each."""
    return f"""
{PREAMBLE}
s os-release; cat /etc/os-release 2>/dev/null
s kernel; uname -r
s addresses; hostname -I 2>/dev/null
s dockerd; dockerd --version 2>/dev/null || docker --version 2>/dev/null
s docker-server; timeout 20 docker version --format '{{{{.Server.Version}}}}' 2>/dev/null
{UNIT_AND_FILES}
s pep668; python3 -c 'import os,sysconfig;print(os.path.exists(os.path.join(sysconfig.get_path("stdlib"),"EXTERNALLY-MANAGED")))' 2>/dev/null
s pip; python3 -m pip --version 2>/dev/null
s packages; dpkg-query -W -f '${{Package}} ${{db:Status-Status}}\\n' 2>/dev/null
s apt-lists-age; t=$(stat -c %Y {APT_STAMP} /var/cache/apt/pkgcache.bin /var/lib/apt/lists 2>/dev/null | sort -n | tail -1); echo $(( $(date +%s) - ${{t:-0}} ))
s run-propagation; findmnt -no PROPAGATION /run 2>/dev/null
s container; docker inspect {shlex.quote(container)} 2>/dev/null
s image; docker image inspect --format '{{{{.Id}}}}' {shlex.quote(image)} 2>/dev/null
exit 0
"""


@dataclass
class HostFacts:
    """What one host has, as far as the tasks care."""

    os: dict[str, str] = field(default_factory=dict)
    kernel: str = ""
    addresses: list[str] = field(default_factory=list)
    docker_version: str = ""
    docker_answers: bool = False
    unit: dict[str, str] = field(default_factory=dict)
    externally_managed: bool = False
    pip_version: str = ""
    packages: set[str] = field(default_factory=set)
    apt_lists_age: int = 0
    run_propagation: str = ""
    files: dict[str, str] = field(default_factory=dict)
    container: dict | None = None
    image_id: str = ""

    @property
    def os_name(self) -> str:
        return self.os.get("PRETTY_NAME") or self.os.get("ID", "unknown OS")

    @property
    def dropins(self) -> dict[str, str]:
        prefix = DROPIN_DIR + "/"
        return {path: text for path, text in self.files.items() if path.startswith(prefix)}


def parse(output: str) -> HostFacts:
    """Turn the script's output into ``HostFacts``."""
    sections = _sections(output)
    facts = HostFacts()
    facts.os = dict(_os_release(sections.get("os-release", "")))
    facts.kernel = sections.get("kernel", "").strip()
    facts.addresses = sections.get("addresses", "").split()
    facts.docker_version = _version_word(sections.get("dockerd", ""))
    server = sections.get("docker-server", "").strip()
    facts.docker_answers = bool(server)
    facts.docker_version = server or facts.docker_version
    facts.unit = dict(
        line.split("=", 1) for line in sections.get("docker-unit", "").splitlines() if "=" in line
    )
    facts.externally_managed = sections.get("pep668", "").strip() == "True"
    facts.pip_version = _version_word(sections.get("pip", ""))
    facts.packages = {
        line.split()[0] for line in sections.get("packages", "").splitlines() if line.endswith(" installed")
    }
    facts.apt_lists_age = int(sections.get("apt-lists-age", "0").strip() or 0)
    facts.run_propagation = sections.get("run-propagation", "").strip()
    facts.files = {
        name[len("file ") :]: base64.b64decode(body.strip()).decode("utf-8", "replace")
        for name, body in sections.items()
        if name.startswith("file ")
    }
    facts.container = _first_json(sections.get("container", ""))
    facts.image_id = sections.get("image", "").strip()
    return facts


def _sections(output: str) -> dict[str, str]:
    sections: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in output.splitlines():
        if line.startswith(MARK):
            current = sections.setdefault(line[len(MARK) :].strip(), [])
        elif current is not None:
            current.append(line)
    return {name: "\n".join(lines).strip("\n") for name, lines in sections.items()}


def _os_release(text: str):
    for line in text.splitlines():
        if "=" in line and not line.startswith("#"):
            key, value = line.split("=", 1)
            yield key.strip(), value.strip().strip('"')


def _version_word(text: str) -> str:
    match = re.search(r"(\d+\.\d+(?:\.\d+)?)", text)
    return match.group(1) if match else ""


def _first_json(text: str) -> dict | None:
    try:
        value = json.loads(text) if text.strip() else None
    except json.JSONDecodeError:
        return None
    if isinstance(value, list):
        return value[0] if value else None
    return value
