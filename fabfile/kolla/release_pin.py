"""Pinning kolla-ansible to a release: every service's image at its snapshot tag, ``TAG-RELEASE``.

kolla-ansible builds each service's image as ``{{ docker_image_url }}NAME:{{ NAME_tag }}``; a per-service
tag defaults (through its project's tag) to ``openstack_tag``, which is ``{{ openstack_release }}-
{{ kolla_base_distro }}-{{ kolla_base_distro_version }}{{ openstack_tag_suffix }}``. So one suffix,
``-RELEASE`` after the operator's own, pins every service that keeps the default tag; the operator's
own ``openstack_tag`` gets ``-RELEASE`` itself; and each per-service tag the operator set (a literal,
``nova_compute_tag: custom``) gets its own pin, ``custom-RELEASE``: whatever a service's tag was, its
pinned tag is that tag, then ``-RELEASE``, which is where sync-images put its snapshot.

The pin is a file of its own in ``globals.d``, which kolla-ansible reads after globals.yml and in name
order: the operator's lines stay as they are (a roll back rewrites only the pin, ``--release none``
removes it), and its name sorts after theirs so that it has the last word.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import PurePosixPath

import yaml

from ..model import grammar

PIN_NAME = "zz-kolla-registry-release.yml"
# The pin's own key: which release it pins (kolla-ansible reads it as an unused variable).
RELEASE_KEY = "kolla_registry_release"
UNPIN = "none"
SUFFIX, TAG = "openstack_tag_suffix", "openstack_tag"
# A template that only names another tag variable inherits that variable's pinned value.
_INHERITS = re.compile(r"\{\{\s*[a-z0-9_]+_tag\s*\}\}")


class PinError(Exception):
    """A tag this tool cannot pin; the message names the file and the key."""


def pin_path(globals_path: str) -> str:
    """The pin, in globals.d beside globals.yml."""
    return str(PurePosixPath(globals_path).parent / "globals.d" / PIN_NAME)


def is_image_tag_key(key: str) -> bool:
    """Whether ``key`` is a service's container image tag (``nova_compute_tag``), not some other tag
    (``octavia_amp_image_tag`` names a Glance image)."""
    return key.endswith("_tag") and not key.endswith("_image_tag") and key != TAG


def operator_values(files: Iterable[tuple[str, str]]) -> dict[str, tuple[object, str]]:
    """Every key globals.yml and globals.d set, the later file's winning, with the file that set it
    (``files`` in kolla-ansible's order; the pin itself left out)."""
    found: dict[str, tuple[object, str]] = {}
    for path, text in files:
        if PurePosixPath(path).name == PIN_NAME:
            continue
        try:
            data = yaml.safe_load(text) if text.strip() else None
            data = {} if data is None else data
        except yaml.YAMLError:
            raise PinError(f"{path}: not valid YAML; no pin written") from None
        if not isinstance(data, dict):
            raise PinError(f"{path}: not a mapping of variables; no pin written")
        found.update({str(key): (value, path) for key, value in data.items()})
    return found


def pin_values(release: str, files: Iterable[tuple[str, str]]) -> dict[str, str]:
    """The keys that pin every service to ``release``, from the operator's globals (``files``)."""
    found = operator_values(files)
    values: dict[str, str] = {RELEASE_KEY: release}
    if TAG in found:
        values[TAG] = f"{_literal(TAG, *found[TAG])}-{release}"
    else:
        suffix = _literal(SUFFIX, *found[SUFFIX]) if SUFFIX in found else ""
        values[SUFFIX] = f"{suffix}-{release}"
    for key, (value, path) in sorted(found.items()):
        if not is_image_tag_key(key) or key == SUFFIX:
            continue
        if isinstance(value, str) and _INHERITS.fullmatch(value.strip()):
            continue
        values[key] = f"{_literal(key, value, path)}-{release}"
    return values


def _literal(key: str, value: object, path: str) -> str:
    """A tag value that a pin can extend: a plain string (the suffix may be empty)."""
    if isinstance(value, float):
        raise PinError(f"{path}: {key}: {value!r} was read as a number: quote it")
    text = "" if value is None else str(value)
    if "{{" in text or "{%" in text:
        raise PinError(f"{path}: {key}: a template ({text}) cannot be pinned: give a plain tag, or pin it by hand")
    if text and not grammar.IMAGE_TAG.fullmatch(text.lstrip("-") or "x"):
        raise PinError(f"{path}: {key}: {text!r} is not an image tag")
    return text


def later_files(files: Iterable[tuple[str, str]]) -> list[str]:
    """globals.d files kolla-ansible reads after the pin that set a tag: the pin would not have the last word."""
    late = []
    for path, text in files:
        name = PurePosixPath(path).name
        if "/globals.d/" not in path or name <= PIN_NAME:
            continue
        try:
            data = yaml.safe_load(text) or {}
        except yaml.YAMLError:
            continue
        if isinstance(data, dict) and any(key in (TAG, SUFFIX) or is_image_tag_key(str(key)) for key in data):
            late.append(path)
    return late


def render_pin(values: dict[str, str]) -> str:
    """The pin file: what it is, how to move or remove it, then its keys."""
    release = values[RELEASE_KEY]
    lines = [
        f"# kolla-registry: every Kolla image pinned to release {release}, its snapshot tags (TAG-{release}).",
        "# Written by `fab kolla-globals --release RELEASE`; `--release none` removes it. Edit globals.yml, not this.",
    ]
    lines += [f"{key}: {_quoted(values[key])}" for key in [RELEASE_KEY, *sorted(k for k in values if k != RELEASE_KEY)]]
    return "---\n" + "\n".join(lines) + "\n"


def pinned_release(text: str | None) -> str:
    """The release a pin file pins ("" when there is none, or it is not the tool's)."""
    if not text:
        return ""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError:
        return ""
    release = data.get(RELEASE_KEY) if isinstance(data, dict) else None
    return release if isinstance(release, str) and grammar.IMAGE_TAG.fullmatch(release) else ""


def globals_files(found: dict[str, str], globals_path: str) -> list[tuple[str, str]]:
    """globals.yml, then globals.d's .yml, .yaml and .json files by name, as kolla-ansible reads them."""
    folder = str(PurePosixPath(globals_path).parent / "globals.d") + "/"
    extra = sorted(path for path in found if path.startswith(folder) and PurePosixPath(path).suffix in (".yml", ".yaml", ".json"))
    return [(path, found[path]) for path in [globals_path, *extra] if path in found]


def _quoted(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
