"""Checking an inventory file's values, each error naming the file and the key."""

from __future__ import annotations

import difflib
import ipaddress
import os
from dataclasses import fields, replace
from pathlib import Path
from typing import Any

from ..model import grammar
from ..model.inventory import (
    HTPASSWD,
    OFF,
    OWN_FILES,
    SELF_SIGNED,
    DockerSettings,
    Host,
    InventoryError,
    RegistrySettings,
    TlsFiles,
)
from .store import STORE_KEYS, check_store, read_store, with_hostname_addresses

_HOST_KEYS = {f.name for f in fields(Host)}
_CHOICES = {
    "registry.network": ("host", "bridge", "auto"),
    "docker.source": ("distro", "get-docker"),
    "docker.config_method": ("auto", "daemon-json", "docker-opts"),
    "host_key_policy": ("accept-new", "strict", "off"),
    "registry.auth": (OFF, HTPASSWD),
}
# What each value must look like, and how an error says it.
_GRAMMAR = {
    "name": (grammar.HOST_NAME, "is not a host name (letters, digits, '.', '_', '-')"),
    "user": (grammar.USER, "is not a user name"),
    "zone": (grammar.ZONE, "is not a zone name (letters, digits, '.', '_', '-')"),
    "registry.name": (grammar.CONTAINER_NAME, "is not a container name"),
    "registry.volume": (grammar.CONTAINER_NAME, "is not a volume name"),
    "registry.image": (grammar.IMAGE_REFERENCE, "is not an image reference ([registry/]name[:tag])"),
    "docker.prerequisites": (grammar.DEBIAN_PACKAGE, "is not a Debian package name"),
    "images.registry": (grammar.REGISTRY_HOST, "is not a registry (host[:port])"),
}


class InventoryReader:
    """Checks one file's values, naming the file and key in each error."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def fail(self, key: str, problem: str) -> InventoryError:
        return InventoryError(f"{self.path}: {key}: {problem}")

    def mapping(self, value: Any, key: str, allowed: set[str]) -> dict:
        if not isinstance(value, dict):
            raise self.fail(key or "top level", f"expected a mapping, got {kind(value)}")
        for name in value:
            if name not in allowed:
                where = f"{key}.{name}" if key else str(name)
                hint = difflib.get_close_matches(str(name), sorted(allowed), n=1)
                suggestion = f" (did you mean {hint[0]!r}?)" if hint else ""
                raise self.fail(where, f"unknown key{suggestion}")
        return value

    def string(self, value: Any, key: str) -> str:
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise self.fail(key, f"expected a string, got {kind(value)}")
        text = str(value).strip()
        if not text:
            raise self.fail(key, "must not be empty")
        return text

    def port(self, value: Any, key: str) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
            raise self.fail(key, f"{value!r} is not a port number (1-65535)")
        return value

    def choice(self, value: Any, key: str, where: str = "") -> str:
        options = _CHOICES[key]
        if value not in options:
            raise self.fail(where or key, f"{value!r} is not one of {', '.join(options)}")
        return value

    def checked(self, value: str, kind: str, where: str) -> str:
        """``value`` if it has the grammar of ``kind`` (see ``_GRAMMAR``; other kinds are free)."""
        pattern, problem = _GRAMMAR.get(kind, (None, ""))
        if pattern is not None and not grammar.matches(pattern, value):
            raise self.fail(where, f"{value!r} {problem}")
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
            if name == "port":
                values[name] = self.port(raw, where)
            elif name == "host_key_policy":
                values[name] = self.choice(raw, name, where)
            elif name == "write_as":
                values[name] = self.write_as(raw, where)
            else:
                values[name] = self.checked(self.string(raw, where), name, where)
        if "address" in values and not grammar.is_address(values["address"]):
            raise self.fail(f"{key}.address", f"{values['address']!r} is not a host name or IP address")
        if "key" in values:
            values["key"] = os.path.expanduser(values["key"])
        if "known_hosts" in values:
            values["known_hosts"] = os.path.expanduser(values["known_hosts"])
        return replace(defaults, **values)

    def write_as(self, value: Any, key: str) -> tuple[tuple[str, str], ...]:
        """``{FOLDER: USER}``: absolute folders on the host (not ``/``), each written as the user that owns it."""
        if not isinstance(value, dict):
            raise self.fail(key, f"expected a mapping of folders to user names, got {kind(value)}")
        entries = []
        for raw_folder, raw_user in value.items():
            folder = self.string(raw_folder, key).rstrip("/")
            where = f"{key}.{raw_folder}"
            if not folder or not grammar.matches(grammar.HOST_PATH, folder):
                raise self.fail(where, f"{raw_folder!r} is not an absolute folder (no blanks, quotes or '..'; not /)")
            user = self.string(raw_user, where)
            if not grammar.matches(grammar.USER, user) or user == "root":
                raise self.fail(where, f"{user!r} is not a user name other than root")
            entries.append((folder, user))
        return tuple(entries)

    def targets(self, value: Any, defaults: Host) -> tuple[Host, ...]:
        if not isinstance(value, list):
            raise self.fail("targets", f"expected a list of hosts, got {kind(value)}")
        return tuple(self.host(item, f"targets[{index}]", defaults) for index, item in enumerate(value))

    def no_duplicates(self, deploy_host: Host, targets: tuple[Host, ...]) -> None:
        """Each target once; the deployment host may be one of them (a small cloud's control node)."""
        seen: dict[str, str] = {}
        for index, host in enumerate(targets):
            key = f"targets[{index}]"
            if host.name == deploy_host.name and host.address != deploy_host.address:
                problem = f"{host.name!r} is the deploy_host, whose address is {deploy_host.address!r}"
                raise self.fail(f"{key}.address", f"{host.address!r}: {problem}")
            for label, value in (("name", host.name), ("address", host.address)):
                marker = f"{label}:{value}"
                if marker in seen:
                    raise self.fail(f"{key}.{label}", f"{value!r} is listed twice (also {seen[marker]})")
                seen[marker] = key

    def registry(self, value: Any, defaults: Host | None = None, others: tuple[Host, ...] = ()) -> RegistrySettings:
        allowed = {f.name for f in fields(RegistrySettings)} - {"tls_files", "s3"} | STORE_KEYS
        data = self.mapping(value, "registry", allowed)
        values: dict[str, Any] = read_store(self, data, defaults or Host("", ""), others)
        for name, raw in data.items():
            where = f"registry.{name}"
            if raw is None or name in STORE_KEYS:
                continue
            if name == "tls":
                values.update(self.tls(raw))
            elif name == "auth":
                # YAML reads an unquoted off as false.
                values[name] = self.choice(OFF if raw is False else raw, where)
            elif name == "port":
                values[name] = self.port(raw, where)
            elif name == "network":
                values[name] = self.choice(raw, where)
            else:
                values[name] = self.checked(self.string(raw, where), where, where)
        if "address" in values:
            _check_registry_address(values["address"], self.fail)
        if "bind" in values and not grammar.is_ip(values["bind"], 4):
            raise self.fail("registry.bind", f"{values['bind']!r} is not an IPv4 address of the deployment host")
        if "image_archive" in values:
            values["image_archive"] = self.local_path(values["image_archive"])
        if values.get("auth", OFF) != OFF and values.get("tls", OFF) == OFF:
            raise self.fail("registry.auth", "htpasswd needs TLS (set registry.tls): the password would cross in clear")
        check_store(self, values)
        with_hostname_addresses(self, values)
        return RegistrySettings(**values)

    def tls(self, raw: Any) -> dict:
        """``off`` | ``self-signed`` | ``{cert: PATH, key: PATH, ca: PATH}`` (files on this machine)."""
        if raw is False or raw in (OFF, SELF_SIGNED):
            return {"tls": OFF if raw is False else raw}
        if not isinstance(raw, dict):
            raise self.fail("registry.tls", f"{raw!r} is not off, self-signed or a mapping of cert, key and ca")
        data = self.mapping(raw, "registry.tls", {"cert", "key", "ca"})
        paths = {}
        for name in ("cert", "key", "ca"):
            if name not in data:
                raise self.fail(f"registry.tls.{name}", "missing")
            paths[name] = self.local_path(self.string(data[name], f"registry.tls.{name}"))
            if not os.access(paths[name], os.R_OK):
                raise self.fail(f"registry.tls.{name}", f"{paths[name]}: cannot read")
        return {"tls": OWN_FILES, "tls_files": TlsFiles(**paths)}

    def docker(self, value: Any) -> DockerSettings:
        data = self.mapping(value, "docker", {f.name for f in fields(DockerSettings)})
        values: dict[str, Any] = {}
        for name, raw in data.items():
            where = f"docker.{name}"
            if name == "prerequisites":
                if not isinstance(raw, list):
                    raise self.fail(where, f"expected a list of package names, got {kind(raw)}")
                values[name] = tuple(
                    self.checked(self.string(item, f"{where}[{i}]"), where, f"{where}[{i}]")
                    for i, item in enumerate(raw)
                )
            elif name == "apt_cache_valid_time":
                if isinstance(raw, bool) or not isinstance(raw, int) or raw < 0:
                    raise self.fail(where, f"{raw!r} is not a number of seconds")
                values[name] = raw
            else:
                values[name] = self.choice(raw, where)
        return DockerSettings(**values)

    def local_path(self, value: str) -> str:
        """A path on this machine; a relative one is relative to the file's folder."""
        path = Path(os.path.expanduser(value))
        return str(path if path.is_absolute() else self.path.parent / path)

def _check_registry_address(address: str, fail) -> None:
    # dockerd rejects IPv6 literals in insecure-registries (moby#39033).
    try:
        if ipaddress.ip_address(address).version == 6:
            raise fail("registry.address", "IPv6 addresses are rejected by Docker; use a hostname")
    except ValueError:
        if ":" in address or "/" in address:
            raise fail("registry.address", "give a host name or IP without port (set registry.port)")
        if not grammar.matches(grammar.HOSTNAME, address):
            raise fail("registry.address", f"{address!r} is not a host name or IPv4 address") from None


def kind(value: Any) -> str:
    """How an error names a YAML value's type."""
    return {dict: "a mapping", list: "a list", str: "a string", type(None): "nothing"}.get(
        type(value), type(value).__name__
    )
