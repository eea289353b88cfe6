"""Reading ``hosts.yaml``: the YAML, then every value checked (``reader``), into ``model.inventory``."""

from __future__ import annotations

import os
from pathlib import Path

import yaml

from ..model.inventory import Host, ImageSettings, Inventory, InventoryError
from .images import KOLLA_ANSIBLE, read_images
from .reader import InventoryReader

ENV_VAR = "KOLLA_REGISTRY_HOSTS"
PROJECT_ROOT = Path(__file__).resolve().parents[2]


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


def load_images(path: Path) -> ImageSettings:
    """Read an image list file: the inventory's ``images:`` section, alone or under that key."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as error:
        raise InventoryError(f"{path}: cannot read: {error.strerror}") from None
    except yaml.YAMLError:
        raise InventoryError(f"{path}: not valid YAML") from None
    if isinstance(data, dict) and set(data) == {"images"}:
        data = data["images"]
    return read_images(InventoryReader(path), data, "images")


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
    reader = InventoryReader(path)
    top = reader.mapping(data, "", {"defaults", "deploy_host", "targets", "registry", "docker", "images"})
    defaults = reader.host(top.get("defaults") or {}, "defaults", Host("", ""), need_address=False)
    if "deploy_host" not in top:
        raise InventoryError(f"{path}: deploy_host: missing (the host that runs the registry)")
    deploy_host = reader.host(top["deploy_host"], "deploy_host", defaults)
    images = read_images(reader, top["images"], "images") if top.get("images") is not None else None
    from_kolla = top.get("targets") == KOLLA_ANSIBLE
    if from_kolla and (images is None or images.kolla is None):
        raise reader.fail("targets", f"{KOLLA_ANSIBLE}: needs images.from: {KOLLA_ANSIBLE} (its inventory holds the hosts)")
    targets = () if from_kolla else reader.targets(top.get("targets") or [], defaults)
    reader.no_duplicates(deploy_host, targets)
    return Inventory(
        path=path,
        deploy_host=deploy_host,
        targets=targets,
        registry=reader.registry(top.get("registry") or {}, defaults, (deploy_host, *targets)),
        docker=reader.docker(top.get("docker") or {}),
        defaults=defaults,
        images=images,
        kolla_targets=from_kolla,
    )
