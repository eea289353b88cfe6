"""Checking ``registry.hostname``, ``registry.replicas`` and ``registry.storage``: several registries, one store."""

from __future__ import annotations

import os
from typing import Any

from ..model import grammar
from ..model.inventory import FILESYSTEM, S3, Host, S3Store

STORE_KEYS = {"hostname", "replicas", "storage"}
_S3_KEYS = {"endpoint", "bucket", "region", "access_key", "secret_key_file"}
# Optional: true lets an http:// endpoint through (the images then cross the network unprotected).
_S3_INSECURE = "insecure"
_S3_GRAMMAR = {
    "endpoint": (grammar.S3_ENDPOINT, "is not an endpoint URL (http[s]://host[:port])"),
    "bucket": (grammar.S3_BUCKET, "is not an S3 bucket name"),
    "region": (grammar.S3_REGION, "is not a region name"),
    "access_key": (grammar.S3_ACCESS_KEY, "is not an access key"),
}


def read_store(reader, data: dict, defaults: Host, others: tuple[Host, ...]) -> dict[str, Any]:
    """The store settings of the ``registry`` mapping ``data`` (``reader`` is an ``InventoryReader``)."""
    values: dict[str, Any] = {}
    if data.get("hostname") is not None:
        values["hostname"] = _hostname(reader, data["hostname"])
    if data.get("storage") is not None:
        values["s3"] = _storage(reader, data["storage"])
    if data.get("replicas") is not None:
        values["replicas"] = _replicas(reader, data["replicas"], defaults, others)
    return values


def check_store(reader, values: dict[str, Any]) -> None:
    """What several instances need: a shared store, and one name for the nodes; refused naming the key.

    TLS and a login work with replicas: the deployment host's CA issues each instance's certificate
    (or your own certificate is on every instance), and every instance has the one login file."""
    if not values.get("replicas"):
        return
    if not values.get("s3"):
        raise reader.fail(
            "registry.replicas",
            f"replicas need a shared store: set registry.storage to s3 (with {FILESYSTEM} storage "
            "each instance would hold its own images)",
        )
    if not values.get("hostname"):
        raise reader.fail("registry.hostname", "missing: with replicas, nodes pull by one name (e.g. kolla-registry.internal)")


def with_hostname_addresses(reader, values: dict[str, Any]) -> None:
    """With ``hostname``, nodes map it to an instance in /etc/hosts, which takes IPv4 addresses only."""
    if not values.get("hostname"):
        return
    address = values.get("address")
    if address and not grammar.is_ip(address, 4):
        raise reader.fail("registry.address", f"{address!r}: with registry.hostname, give the deployment host's IPv4 address")


def _hostname(reader, raw: Any) -> str:
    name = reader.string(raw, "registry.hostname")
    if grammar.is_ip(name) or not grammar.matches(grammar.HOSTNAME, name) or "." not in name.rstrip("."):
        raise reader.fail("registry.hostname", f"{name!r} is not a DNS name with a domain (e.g. kolla-registry.internal)")
    return name.rstrip(".").lower()


def _storage(reader, raw: Any) -> S3Store | None:
    if raw == FILESYSTEM:
        return None
    if not isinstance(raw, dict) or set(raw) != {S3}:
        raise reader.fail("registry.storage", f"{raw!r} is not {FILESYSTEM} or a mapping with s3")
    data = reader.mapping(raw[S3], "registry.storage.s3", _S3_KEYS | {_S3_INSECURE})
    found: dict[str, str] = {}
    for name in sorted(_S3_KEYS):
        where = f"registry.storage.s3.{name}"
        if data.get(name) in (None, ""):
            raise reader.fail(where, "missing")
        found[name] = reader.string(data[name], where)
        pattern, problem = _S3_GRAMMAR.get(name, (None, ""))
        if pattern is not None and not grammar.matches(pattern, found[name]):
            raise reader.fail(where, f"{found[name]!r} {problem}")
    path = reader.local_path(found["secret_key_file"])
    if not os.access(path, os.R_OK):
        raise reader.fail("registry.storage.s3.secret_key_file", f"{path}: cannot read")
    _check_secret(reader, path)
    insecure = _insecure(reader, data.get(_S3_INSECURE, False), found["endpoint"])
    endpoint = found["endpoint"].rstrip("/")
    return S3Store(endpoint, found["bucket"], found["region"], found["access_key"], path, insecure)


def _insecure(reader, raw: Any, endpoint: str) -> bool:
    """An http:// endpoint only with ``insecure: true``: whoever sits between the registries and the
    store could otherwise swap the images every node runs, without anyone having said yes to that."""
    where = "registry.storage.s3.insecure"
    if not isinstance(raw, bool):
        raise reader.fail(where, f"expected true or false, got {raw!r}")
    if endpoint.lower().startswith("http://") and not raw:
        raise reader.fail(
            "registry.storage.s3.endpoint",
            f"{endpoint!r} is plain HTTP: anyone between the registries and the store can read and swap "
            "the images; use https://, or set registry.storage.s3.insecure: true to accept that",
        )
    return raw


def _check_secret(reader, path: str) -> None:
    """One line, no blanks: it goes into an env file line as it is."""
    with open(path, encoding="utf-8") as handle:
        secret = handle.read().strip()
    if not secret or any(char.isspace() for char in secret):
        raise reader.fail("registry.storage.s3.secret_key_file", f"{path}: expected the secret key alone, on one line")


def _replicas(reader, raw: Any, defaults: Host, others: tuple[Host, ...]) -> tuple[Host, ...]:
    if not isinstance(raw, list):
        raise reader.fail("registry.replicas", "expected a list of hosts")
    replicas = tuple(reader.host(item, f"registry.replicas[{i}]", defaults) for i, item in enumerate(raw))
    seen = {host.name: host for host in others}
    deploy = others[0] if others else Host("", "")
    names: set[str] = set()
    for index, replica in enumerate(replicas):
        key = f"registry.replicas[{index}]"
        if not grammar.is_ip(replica.address, 4):
            raise reader.fail(f"{key}.address", f"{replica.address!r}: nodes map the registry's name to it in /etc/hosts: give an IPv4 address")
        if replica.name in names or replica.name == deploy.name or replica.address == deploy.address:
            raise reader.fail(f"{key}.name", f"{replica.name!r} is listed twice (or is the deploy_host)")
        names.add(replica.name)
        known = seen.get(replica.name)
        if known is not None and known.address != replica.address:
            raise reader.fail(f"{key}.address", f"{replica.name!r} is a target whose address is {known.address!r}")
    return replicas
