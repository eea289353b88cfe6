"""The inventory: which hosts to work on and how, read from ``hosts.yaml``."""

from __future__ import annotations

import difflib
import ipaddress
import os
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import yaml

ENV_VAR = "KOLLA_REGISTRY_HOSTS"
PROJECT_ROOT = Path(__file__).resolve().parent.parent


class InventoryError(Exception):
    """A ``hosts.yaml`` that cannot be used; the message names file and key."""


@dataclass(frozen=True)
class Host:
    name: str
    address: str
    user: str = "root"
    port: int = 22
    key: str | None = None
    known_hosts: str | None = None


@dataclass(frozen=True)
class RegistrySettings:
    port: int = 4000
    address: str | None = None
    name: str = "registry"
    image: str = "registry:2"
    volume: str = "registry"
    image_archive: str | None = None
    network: str = "auto"


@dataclass(frozen=True)
class DockerSettings:
    source: str = "distro"
    config_method: str = "auto"
    prerequisites: tuple[str, ...] = (
        "python3-dev",
        "libffi-dev",
        "gcc",
        "libssl-dev",
        "curl",
        "python3-pip",
    )
    apt_cache_valid_time: int = 3600


@dataclass(frozen=True)
class Inventory:
    path: Path
    deploy_host: Host
    targets: tuple[Host, ...] = ()
    registry: RegistrySettings = field(default_factory=RegistrySettings)
    docker: DockerSettings = field(default_factory=DockerSettings)
    defaults: Host | None = None

    def find(self, name: str) -> Host | None:
        """The inventory host called ``name`` (or with that address)."""
        for host in (self.deploy_host, *self.targets):
            if name in (host.name, host.address):
                return host
        return None

    def resolve(self, name: str) -> Host:
        """The inventory host ``name``, or an ad-hoc one with the defaults."""
        known = self.find(name)
        if known:
            return known
        template = self.defaults or Host(name="", address="")
        return replace(template, name=name, address=name)


def default_path() -> Path:
    """``$KOLLA_REGISTRY_HOSTS`` when set, else ``hosts.yaml`` in the project."""
    return Path(os.environ.get(ENV_VAR) or PROJECT_ROOT / "hosts.yaml")


def load(path: Path | None = None) -> Inventory:
    """Read and validate an inventory file."""
    path = Path(path or default_path())
    try:
        text = path.read_text()
    except OSError as error:
        raise InventoryError(f"{path}: cannot read: {error.strerror}") from None
    return parse(text, path)


def parse(text: str, path: Path) -> Inventory:
    """Validate the YAML ``text`` of an inventory file called ``path``."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark else ""
        raise InventoryError(f"{path}: not valid YAML{where}") from None
    if data is None:
        raise InventoryError(f"{path}: the file is empty; it needs a deploy_host")
    reader = _Reader(path)
    top = reader.mapping(data, "", {"defaults", "deploy_host", "targets", "registry", "docker"})
    defaults = reader.host(top.get("defaults") or {}, "defaults", Host("", ""), need_address=False)
    if "deploy_host" not in top:
        raise InventoryError(f"{path}: deploy_host: missing (the host that runs the registry)")
    deploy_host = reader.host(top["deploy_host"], "deploy_host", defaults)
    targets = reader.targets(top.get("targets") or [], defaults)
    reader.no_duplicates((deploy_host, *targets))
    return Inventory(
        path=path,
        deploy_host=deploy_host,
        targets=targets,
        registry=reader.registry(top.get("registry") or {}),
        docker=reader.docker(top.get("docker") or {}),
        defaults=defaults,
    )


_HOST_KEYS = {f.name for f in fields(Host)}
_CHOICES = {
    "registry.network": ("auto", "host", "bridge"),
    "docker.source": ("distro", "get-docker"),
    "docker.config_method": ("auto", "daemon-json", "docker-opts"),
}


class _Reader:
    """Checks one file's values, naming the file and key in each error."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def fail(self, key: str, problem: str) -> InventoryError:
        return InventoryError(f"{self.path}: {key}: {problem}")

    def mapping(self, value: Any, key: str, allowed: set[str]) -> dict:
        if not isinstance(value, dict):
            raise self.fail(key or "top level", f"expected a mapping, got {_kind(value)}")
        for name in value:
            if name not in allowed:
                where = f"{key}.{name}" if key else str(name)
                hint = difflib.get_close_matches(str(name), sorted(allowed), n=1)
                suggestion = f" (did you mean {hint[0]!r}?)" if hint else ""
                raise self.fail(where, f"unknown key{suggestion}")
        return value

    def string(self, value: Any, key: str) -> str:
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise self.fail(key, f"expected a string, got {_kind(value)}")
        text = str(value).strip()
        if not text:
            raise self.fail(key, "must not be empty")
        return text

    def port(self, value: Any, key: str) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
            raise self.fail(key, f"{value!r} is not a port number (1-65535)")
        return value

    def choice(self, value: Any, key: str) -> str:
        options = _CHOICES[key]
        if value not in options:
            raise self.fail(key, f"{value!r} is not one of {', '.join(options)}")
        return value

    def host(self, value: Any, key: str, defaults: Host, need_address: bool = True) -> Host:
        data = self.mapping(value, key, _HOST_KEYS)
        if need_address:
            for required in ("name", "address"):
                if data.get(required) in (None, ""):
                    raise self.fail(f"{key}.{required}", "missing")
        values = {}
        for name, raw in data.items():
            where = f"{key}.{name}"
            values[name] = self.port(raw, where) if name == "port" else self.string(raw, where)
        if "key" in values:
            values["key"] = os.path.expanduser(values["key"])
        if "known_hosts" in values:
            values["known_hosts"] = os.path.expanduser(values["known_hosts"])
        return replace(defaults, **values)

    def targets(self, value: Any, defaults: Host) -> tuple[Host, ...]:
        if not isinstance(value, list):
            raise self.fail("targets", f"expected a list of hosts, got {_kind(value)}")
        return tuple(self.host(item, f"targets[{index}]", defaults) for index, item in enumerate(value))

    def no_duplicates(self, hosts: tuple[Host, ...]) -> None:
        seen: dict[str, str] = {}
        for index, host in enumerate(hosts):
            key = "deploy_host" if index == 0 else f"targets[{index - 1}]"
            for label, value in (("name", host.name), ("address", host.address)):
                marker = f"{label}:{value}"
                if marker in seen and index > 0:
                    raise self.fail(f"{key}.{label}", f"{value!r} is listed twice (also {seen[marker]})")
                seen.setdefault(marker, key)

    def registry(self, value: Any) -> RegistrySettings:
        data = self.mapping(value, "registry", {f.name for f in fields(RegistrySettings)})
        values: dict[str, Any] = {}
        for name, raw in data.items():
            where = f"registry.{name}"
            if raw is None:
                continue
            if name == "port":
                values[name] = self.port(raw, where)
            elif name == "network":
                values[name] = self.choice(raw, where)
            else:
                values[name] = self.string(raw, where)
        if "address" in values:
            _check_registry_address(values["address"], self.fail)
        if "image_archive" in values:
            archive = Path(os.path.expanduser(values["image_archive"]))
            values["image_archive"] = str(archive if archive.is_absolute() else self.path.parent / archive)
        return RegistrySettings(**values)

    def docker(self, value: Any) -> DockerSettings:
        data = self.mapping(value, "docker", {f.name for f in fields(DockerSettings)})
        values: dict[str, Any] = {}
        for name, raw in data.items():
            where = f"docker.{name}"
            if name == "prerequisites":
                if not isinstance(raw, list):
                    raise self.fail(where, f"expected a list of package names, got {_kind(raw)}")
                values[name] = tuple(self.string(item, f"{where}[{i}]") for i, item in enumerate(raw))
            elif name == "apt_cache_valid_time":
                if isinstance(raw, bool) or not isinstance(raw, int) or raw < 0:
                    raise self.fail(where, f"{raw!r} is not a number of seconds")
                values[name] = raw
            else:
                values[name] = self.choice(raw, where)
        return DockerSettings(**values)


def _check_registry_address(address: str, fail) -> None:
    # dockerd rejects IPv6 literals in insecure-registries (moby#39033).
    try:
        if ipaddress.ip_address(address).version == 6:
            raise fail("registry.address", "IPv6 addresses are rejected by Docker; use a hostname")
    except ValueError:
        if ":" in address or "/" in address:
            raise fail("registry.address", "give a host name or IP without port (set registry.port)")


def _kind(value: Any) -> str:
    return {dict: "a mapping", list: "a list", str: "a string", type(None): "nothing"}.get(
        type(value), type(value).__name__
    )
