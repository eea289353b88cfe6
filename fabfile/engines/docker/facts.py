"""Docker's sections: its version and daemon, its service, its config files, the images it holds."""

from __future__ import annotations

import json
import re

from ...facts.base import Section, Texts, fact, files, version_word
from ...model.facts import HostFacts
from ...model.paths import PENDING
from .paths import DAEMON_JSON, DEFAULT_DOCKER, DOCKER_SOCKET, DROPIN_DIR, NAME

DOCKER_CONFIG_FILES = (DAEMON_JSON, DEFAULT_DOCKER, PENDING)


def read_version(texts: Texts, facts: HostFacts) -> None:
    """The engine's version: the server's when it answers, else the installed binary's.

    podman-docker's ``docker`` is podman: its version is podman's, not a Docker's.
    """
    server = texts.get("docker-server", "").strip()
    server = server if re.match(r"\d", server) else ""
    installed = texts.get("dockerd", "")
    docker = facts.engine(NAME)
    docker.answers = bool(server)
    docker.version = server or ("" if "podman" in installed.lower() else version_word(installed))


def _service(texts: Texts, facts: HostFacts) -> None:
    lines = texts.get("docker-unit", "").splitlines()
    facts.engine(NAME).service = dict(line.split("=", 1) for line in lines if "=" in line)


def dropins(facts: HostFacts) -> dict[str, str]:
    """docker.service's drop-ins this host has, by path."""
    prefix = DROPIN_DIR + "/"
    return {path: text for path, text in facts.files.items() if path.startswith(prefix)}


# curl's arguments for the headers of dockerd's /_ping on its API socket.
PING = f"-sS -m 20 --unix-socket {DOCKER_SOCKET} -D - -o /dev/null http://docker/_ping"
# From $out (those headers, or ""): the docker-server and, when no server answers, dockerd sections. Every
# process counts when twenty nodes share two cores: the Server header costs no process, where the docker
# CLI costs ~40 ms of CPU a call and the dockerd binary as much (the CLI stays the fallback: podman-docker,
# no curl). Header names in either case (HTTP/2 sends them in lower case).
VERSION_FROM_PING = """case $out in *[Ss]"erver: Docker/"*) v=${out#*[Ss]erver: Docker/}; v=${v%%[[:space:]]*} ;; *) v= ;; esac
[ -n "$v" ] || v=$(timeout 20 docker version --format '{{.Server.Version}}' 2>/dev/null)
s docker-server; echo "$v"
[ -n "$v" ] || { s dockerd; dockerd --version 2>/dev/null || docker --version 2>/dev/null; }"""
VERSION = Section("docker", f"out=$(curl {PING} 2>/dev/null) || out=\n{VERSION_FROM_PING}", read_version)
SERVICE = Section(
    "docker-unit",
    "s docker-unit; systemctl show docker -p ExecStart -p EnvironmentFiles -p MainPID -p ActiveState "
    "-p FragmentPath 2>/dev/null",
    _service,
)
CONFIG_FILES = files(*DOCKER_CONFIG_FILES, globs=(f"{DROPIN_DIR}/*.conf",))
# What a Docker host's trust planners read: its service and its config files.
CONFIG = (SERVICE, CONFIG_FILES)


def read_registry_config(facts: HostFacts, text: str) -> None:
    """dockerd's RegistryConfig, from ``docker info``'s whole JSON or its RegistryConfig alone."""
    try:
        value = json.loads(text) if text.strip() else {}
    except json.JSONDecodeError:
        value = {}
    value = value if isinstance(value, dict) else {}
    config = value.get("RegistryConfig", value)
    facts.engine(NAME).registry_config = config if isinstance(config, dict) else {}


# dockerd's own view of which registries it treats as insecure (CIDRs, and each named registry).
REGISTRY_CONFIG = fact(
    "docker-registry-config",
    "timeout 20 docker info --format '{{json .RegistryConfig}}' 2>/dev/null",
    read_registry_config,
)


def _held(text: str) -> dict[str, list[str]]:
    held: dict[str, list[str]] = {}
    for line in text.splitlines():
        ref, _, digest = line.strip().partition(" ")
        if ref and not ref.endswith(":<none>"):
            held.setdefault(ref, []).extend([digest] if digest.startswith("sha256:") else [])
    return held


# Every image Docker holds, each tag with its repository digest: what pull-images and status compare.
HELD_IMAGES = fact(
    "docker-images",
    "timeout 60 docker images --digests --format '{{.Repository}}:{{.Tag}} {{.Digest}}' 2>/dev/null",
    lambda f, t: setattr(f.engine(NAME), "images", _held(t)),
)
