"""The files the lab hands out: its SSH key, known_hosts, and the inventory (hosts.yaml format)."""

import os
from pathlib import Path

from .config import DEPLOY_HOST, REGISTRY_IMAGE, node_ip, paths
from .host import run, tool

HEADER = """\
# The kolla-registry lab's hosts, written by `python -m tests.lab up`
# (see tests/lab); the next `up` rewrites it, `down` removes it.
"""


def ensure_key() -> Path:
    """The lab's ed25519 key pair, made once."""
    key = paths().key
    public = key.with_suffix(".pub")
    key.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    if not key.exists():
        public.unlink(missing_ok=True)
        run([tool("ssh-keygen"), "-q", "-t", "ed25519", "-N", "", "-C", "kolla-lab", "-f", str(key)])
    if not public.exists():
        derived = run([tool("ssh-keygen"), "-y", "-f", str(key)]).stdout
        _write(public, derived)
    return key


def write_known_hosts(lines: list[str]) -> None:
    _write(paths().known_hosts, "".join(f"{line}\n" for line in lines))


def replace_known_host(address: str, lines: list[str]) -> None:
    """Swap one host's keys (a recreated host has new ones)."""
    path = paths().known_hosts
    old = path.read_text().splitlines() if path.exists() else []
    write_known_hosts([line for line in old if line.split()[:1] != [address]] + lines)


def write_inventory(targets: list[str]) -> Path:
    # Imported here so that a bare python can still run the CLI far enough to say "needs root".
    import yaml

    lab = paths()
    data = {
        "defaults": {"user": "root", "port": 22, "key": str(lab.key), "known_hosts": str(lab.known_hosts)},
        "deploy_host": {"name": DEPLOY_HOST, "address": node_ip(DEPLOY_HOST)},
        "targets": [{"name": name, "address": node_ip(name)} for name in targets],
        "registry": {
            "port": 4000,
            "image": REGISTRY_IMAGE,
            "volume": "registry",
            "image_archive": str(lab.archive),
            "network": "auto",
        },
        "docker": {"source": "distro", "config_method": "auto"},
    }
    _write(lab.inventory, HEADER + yaml.safe_dump(data, sort_keys=False))
    return lab.inventory


def forget() -> None:
    """Remove what describes a lab that is gone."""
    paths().inventory.unlink(missing_ok=True)
    paths().known_hosts.unlink(missing_ok=True)


def _write(path: Path, text: str) -> None:
    """Write whole or not at all: a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(text)
    os.replace(partial, path)
