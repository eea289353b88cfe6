"""Checking an inventory's (or an image list file's) ``images`` section: which Kolla images, from where."""

from __future__ import annotations

import os
import re
from dataclasses import fields
from typing import Any

from ..model import grammar
from ..model.inventory import ImageSettings, KollaSource
from .reader import InventoryReader, kind

# The keys of the kolla-ansible source (images.from: kolla-ansible), and those only a list has.
KOLLA_KEYS = {"from", "inventory", "config_dir", "kolla_ansible"}
LIST_ONLY = ("tag", "services", "names", "tag_filter")
KOLLA_ANSIBLE = "kolla-ansible"


def read_images(reader: InventoryReader, value: Any, key: str) -> ImageSettings:
    """The images section: a list (names, or services at a tag), or ``from: kolla-ansible``."""
    data = reader.mapping(value, key, {f.name for f in fields(ImageSettings)} - {"kolla"} | KOLLA_KEYS)
    values = _upstream(reader, data, key)
    values["platforms"] = tuple(
        _platform(reader, item, f"{key}.platforms[{i}]")
        for i, item in enumerate(_sequence(reader, data.get("platforms"), f"{key}.platforms"))
    )
    if "archive" in values:
        values["archive"] = reader.local_path(values["archive"])
    if data.get("tag_filter") is not None:
        values["tag_filter"] = _tag_filter(reader, data["tag_filter"], f"{key}.tag_filter")
    if data.get("max_requests") is not None:
        values["max_requests"] = _count(reader, data["max_requests"], f"{key}.max_requests", 1, 64)
    values.update(_releases(reader, data, key))
    if data.get("from") is not None:
        values["kolla"] = _kolla_source(reader, data, key)
    else:
        values.update(_image_list(reader, data, key, values.get("registry", ImageSettings.registry)))
    return ImageSettings(**values)


def _upstream(reader: InventoryReader, data: dict, key: str) -> dict[str, Any]:
    """Where the images come from: the upstream registry and namespace, its login, an archive."""
    values: dict[str, Any] = {}
    if isinstance(data.get("tag"), float):
        # YAML reads 2023.10 as the number 2023.1: only a quoted tag is what was meant.
        raise reader.fail(f"{key}.tag", f"{data['tag']!r} was read as a number: quote the tag")
    for name in ("registry", "namespace", "tag", "archive", "username", "password_file"):
        if data.get(name) is not None:
            values[name] = reader.string(data[name], f"{key}.{name}")
    if "username" in values and not grammar.matches(grammar.REGISTRY_USER, values["username"]):
        raise reader.fail(f"{key}.username", f"{values['username']!r} is not a registry user name")
    if "password_file" in values:
        values["password_file"] = reader.local_path(values["password_file"])
        if not os.access(values["password_file"], os.R_OK):
            raise reader.fail(f"{key}.password_file", f"{values['password_file']}: cannot read")
    if ("username" in values) != ("password_file" in values):
        raise reader.fail(f"{key}.username", "a private upstream needs both username and password_file")
    registry = values.get("registry", ImageSettings.registry)
    if "://" in registry or registry.endswith("/"):
        raise reader.fail(f"{key}.registry", "give host[:port] only (insecure: true for plain HTTP)")
    reader.checked(registry, "images.registry", f"{key}.registry")
    if "namespace" in values and not grammar.IMAGE_PATH.fullmatch(values["namespace"]):
        raise reader.fail(f"{key}.namespace", f"{values['namespace']!r} is not a repository path")
    if "tag" in values and not grammar.IMAGE_TAG.fullmatch(values["tag"]):
        raise reader.fail(f"{key}.tag", f"{values['tag']!r} is not a valid image tag")
    if "insecure" in data:
        if not isinstance(data["insecure"], bool):
            raise reader.fail(f"{key}.insecure", f"expected true or false, got {kind(data['insecure'])}")
        values["insecure"] = data["insecure"]
    if values.get("insecure") and "username" in values:
        # The login would cross the network in the clear (Basic, or to a token service).
        raise reader.fail(
            f"{key}.insecure",
            "a private upstream's login (username, password_file) is never sent over plain HTTP: "
            "use the upstream over https (insecure: false)",
        )
    return values


def _image_list(reader: InventoryReader, data: dict, key: str, registry: str) -> dict[str, Any]:
    """The images the section names: ``names``, and ``services`` at ``tag``."""
    for name in KOLLA_KEYS - {"from"}:
        if name in data:
            raise reader.fail(f"{key}.{name}", f"only with {key}.from: {KOLLA_ANSIBLE}")
    services = tuple(
        _image_name(reader, item, f"{key}.services[{i}]", allow_tag=False, registry=registry)
        for i, item in enumerate(_sequence(reader, data.get("services"), f"{key}.services"))
    )
    names = tuple(
        _image_name(reader, item, f"{key}.names[{i}]", allow_tag=True, registry=registry)
        for i, item in enumerate(_sequence(reader, data.get("names"), f"{key}.names"))
    )
    untagged = [name for name in names if ":" not in name]
    if (services or untagged) and data.get("tag") is None and data.get("tag_filter") is None:
        what = "services" if services else f"names ({untagged[0]} has no tag)"
        raise reader.fail(f"{key}.tag", f"missing: {what} need a Kolla release tag")
    if not services and not names:
        raise reader.fail(key, f"no images: give names, or tag with services, or from: {KOLLA_ANSIBLE}")
    return {"services": services, "names": names}


def _kolla_source(reader: InventoryReader, data: dict, key: str) -> KollaSource:
    """``from: kolla-ansible``: its inventory (one path or a list), its config dir, its virtualenv."""
    if data["from"] != KOLLA_ANSIBLE:
        raise reader.fail(f"{key}.from", f"{data['from']!r} is not {KOLLA_ANSIBLE}")
    for name in LIST_ONLY:
        if data.get(name) is not None:
            raise reader.fail(f"{key}.{name}", f"not with {key}.from: {KOLLA_ANSIBLE} (kolla-ansible says which images)")
    raw = data.get("inventory")
    paths = [raw] if isinstance(raw, str) else _sequence(reader, raw, f"{key}.inventory")
    if not paths:
        raise reader.fail(f"{key}.inventory", "missing: kolla-ansible's inventory (e.g. /etc/kolla/multinode)")
    inventories = []
    for index, item in enumerate(paths):
        where = f"{key}.inventory" if isinstance(raw, str) else f"{key}.inventory[{index}]"
        inventories.append(_existing(reader, reader.string(item, where), where))
    config_dir = _existing(reader, reader.string(data.get("config_dir") or KollaSource.config_dir, f"{key}.config_dir"), f"{key}.config_dir")
    venv = data.get("kolla_ansible")
    venv = _existing(reader, reader.string(venv, f"{key}.kolla_ansible"), f"{key}.kolla_ansible") if venv else None
    return KollaSource(tuple(inventories), config_dir, venv)


def _existing(reader: InventoryReader, value: str, where: str) -> str:
    """A path on this machine that exists (relative to the inventory file's folder)."""
    path = reader.local_path(value)
    if not os.path.exists(path):
        raise reader.fail(where, f"{path}: not found")
    return path


def _sequence(reader: InventoryReader, value: Any, key: str) -> list:
    if value is None:
        return []
    if not isinstance(value, list):
        raise reader.fail(key, f"expected a list, got {kind(value)}")
    return value


def _releases(reader: InventoryReader, data: dict, key: str) -> dict[str, Any]:
    """The lock file (relative to this file), snapshot tags by date, and the releases prune keeps."""
    values: dict[str, Any] = {}
    if data.get("lock") is not None:
        values["lock"] = reader.local_path(reader.string(data["lock"], f"{key}.lock"))
    if "snapshot" in data:
        if not isinstance(data["snapshot"], bool):
            raise reader.fail(f"{key}.snapshot", f"expected true or false, got {kind(data['snapshot'])}")
        values["snapshot"] = data["snapshot"]
    releases = []
    for i, item in enumerate(_sequence(reader, data.get("keep_releases"), f"{key}.keep_releases")):
        if isinstance(item, float):
            raise reader.fail(f"{key}.keep_releases[{i}]", f"{item!r} was read as a number: quote the release")
        release = reader.string(item, f"{key}.keep_releases[{i}]")
        if not grammar.IMAGE_TAG.fullmatch(release):
            raise reader.fail(f"{key}.keep_releases[{i}]", f"{release!r} is not a release name (a tag's characters)")
        releases.append(release)
    values["keep_releases"] = tuple(releases)
    return values


def _tag_filter(reader: InventoryReader, value: Any, key: str) -> str:
    """``{suffix: -aarch64}`` or ``{regex: '^2025\\.1-.*-aarch64$'}`` as one regular expression (searched)."""
    data = reader.mapping(value, key, {"suffix", "regex"})
    if len(data) != 1:
        raise reader.fail(key, "give one of suffix or regex")
    if "suffix" in data:
        suffix = reader.string(data["suffix"], f"{key}.suffix")
        if not grammar.IMAGE_TAG.fullmatch(suffix.lstrip("-.") or "x") or len(suffix) > 128:
            raise reader.fail(f"{key}.suffix", f"{suffix!r} is not the end of an image tag")
        return re.escape(suffix) + "$"
    pattern = reader.string(data["regex"], f"{key}.regex")
    try:
        re.compile(pattern)
    except re.error as error:
        raise reader.fail(f"{key}.regex", f"not a regular expression: {error}") from None
    return pattern


def _count(reader: InventoryReader, value: Any, key: str, least: int, most: int) -> int:
    """A whole number from ``least`` to ``most``."""
    if isinstance(value, bool) or not isinstance(value, int) or not least <= value <= most:
        raise reader.fail(key, f"{value!r} is not a whole number from {least} to {most}")
    return value


def _platform(reader: InventoryReader, value: Any, key: str) -> str:
    """``os/architecture[/variant]``, as a manifest list names its images."""
    text = reader.string(value, key)
    if not grammar.PLATFORM.fullmatch(text):
        raise reader.fail(key, f"{text!r} is not a platform (os/architecture[/variant], e.g. linux/amd64)")
    return text


def _image_name(reader: InventoryReader, value: Any, key: str, allow_tag: bool, registry: str) -> str:
    """``[REGISTRY/][namespace/]name[:tag]``, without the upstream registry."""
    text = reader.string(value, key).removeprefix(f"{registry}/")
    if "@" in text:
        raise reader.fail(key, f"{text!r}: give a tag, not a digest")
    path, colon, tag = text.rpartition(":") if ":" in text.rsplit("/", 1)[-1] else (text, "", "")
    if not grammar.IMAGE_PATH.fullmatch(path):
        raise reader.fail(key, f"{text!r} is not an image name (lowercase [namespace/]name[:tag])")
    if colon and not allow_tag:
        raise reader.fail(key, f"{text!r}: a service is a name without tag (set images.tag)")
    if colon and not grammar.IMAGE_TAG.fullmatch(tag):
        raise reader.fail(key, f"{tag!r} is not a valid image tag")
    return text
