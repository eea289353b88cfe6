"""Each host its own images: pull-images with kolla-ansible's per-host sets against every image to every
target, and check-images against the ``ssh true`` floor.

python3 benchmarks/run.py kolla-sets [--rate 400mbit] [--check-nodes 20] [--out DIR]

A cloud of 1 controller and 4 computes from the lab: kolla-ansible (its own virtualenv) computes
what `kolla-ansible pull` would pull on each; the lab's upstream holds Kolla-like stand-ins under
those names (base + openstack-base + a leaf each, incompressible), deploy1's registry is filled
with sync-images, and deploy1's link is limited with tc (every pull crosses it). For each mode,
every node first forgets the images, then one pull-images: bytes that left deploy1, seconds, and
each against its floor (the bytes each node needs / the rate).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import yaml

from fabfile.kolla.imageset import kolla_images
from tests.kolla_env import kolla_venv, sample_children
from tests.lab import paths

from . import imageset, labnet
from .distribution import DEFAULT_OUT, REGISTRY, _empty_registry, _fab
from .imageset import MB
from .nodes import ensure_lab, ssh_command

SIZES = imageset.Sizes(base=40 * MB, openstack_base=40 * MB, leaf=4 * MB, services=0)
CONTROLLER, COMPUTES = "node1", ("node2", "node3", "node4", "node5")
OWN, ALL = "each host its own images", "every image to every target"


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    started = time.time()
    lab = ensure_lab(max(5, args.check_nodes))
    venv = kolla_venv()
    inventory, config = _kolla_cloud(lab, venv, args.out)
    found = kolla_images([str(inventory)], str(config), str(venv))
    sets = {host: {pulled.image for pulled in images} for host, images in found.hosts.items() if images}
    union = sorted({image for images in sets.values() for image in images}, key=lambda image: image.name)
    tag = union[0].tag
    names = [image.path.rsplit("/", 1)[1] for image in union]
    image_set = imageset.build_named(SIZES, paths().root / "bench-images", names)
    labnet.start_upstream()
    imageset.push(image_set, labnet.UPSTREAM, tag)
    own, every = _inventories(lab, inventory, config, venv, union, args.out)
    _empty_registry()
    _fab(own, "deploy-host")
    _fab(own, "sync-images")
    _fab(own, "configure-targets")
    rate = labnet.rate_bytes(args.rate)
    needs = {host: sum(image_set.layers[n].size for n in _layers(image_set, images)) for host, images in sets.items()}
    floors = {OWN: sum(needs.values()) / rate,
              ALL: len(sets) * sum(blob.size for blob in image_set.layers.values()) / rate}
    pulls = [_pull(mode, inventory_path, lab, union, floors[mode], args.rate)
             for mode, inventory_path in ((OWN, own), (ALL, every))]
    checks = _checks(lab, args.check_nodes, args.out, f"{union[0].path}:{tag}")
    meta = {"date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)), "rate": args.rate,
            "kolla_ansible": found.kolla_ansible, "images": len(union),
            "per_host": {host: len(images) for host, images in sets.items()},
            "bytes_needed": sum(needs.values())}  # fmt: skip
    text = markdown(pulls, checks, meta)
    (args.out / "kolla-sets.md").write_text(text)
    (args.out / "kolla-sets.json").write_text(json.dumps({"meta": meta, "pulls": pulls, "checks": checks}, indent=2))
    print(text)
    return 0


def _kolla_cloud(lab, venv: Path, out: Path) -> tuple[Path, Path]:
    """kolla-ansible's inventory of the lab's node1 (controller) and node2..5 (computes), and its globals."""
    address = {node.name: node.address for node in lab.targets}
    line = {name: f"{name} ansible_host={address[name]} ansible_user=root ansible_ssh_private_key_file={lab.key}"
            for name in (CONTROLLER, *COMPUTES)}  # fmt: skip
    groups = {"control": [CONTROLLER], "network": [CONTROLLER], "monitoring": [CONTROLLER], "compute": COMPUTES,
              "storage": COMPUTES}  # fmt: skip
    text = "".join(f"[{group}]\n" + "\n".join(line[n] for n in members) + "\n\n" for group, members in groups.items())
    inventory = out / "multinode"
    inventory.write_text(text + "[deployment]\nlocalhost ansible_connection=local\n\n" + sample_children(venv))
    config = out / "etc-kolla"
    config.mkdir(exist_ok=True)
    (config / "globals.yml").write_text('---\nkolla_internal_vip_address: "10.77.0.250"\nnetwork_interface: "eth0"\n')
    return inventory, config


def _inventories(lab, inventory: Path, config: Path, venv: Path, union: list, out: Path) -> tuple[Path, Path]:
    """The tool's inventory twice: images from kolla-ansible (each host its own), and the same images
    as one list every target pulls whole, as before."""
    data = yaml.safe_load(lab.inventory.read_text())
    upstream = {"registry": labnet.UPSTREAM, "insecure": True}
    own = {**data, "targets": "kolla-ansible", "images": {**upstream, "from": "kolla-ansible", "inventory": str(inventory),
                                                          "config_dir": str(config), "kolla_ansible": str(venv)}}
    names = [f"{image.path}:{image.tag}" for image in union]
    hosts = [host for host in data["targets"] if host["name"] in (CONTROLLER, *COMPUTES)]
    every = {**data, "targets": hosts, "images": {**upstream, "names": names}}
    paths = (out / "hosts-own.yaml", out / "hosts-every.yaml")
    for path, content in zip(paths, (own, every), strict=True):
        path.write_text(yaml.safe_dump(content, sort_keys=False))
    return paths


def _layers(image_set: imageset.ImageSet, images: set) -> set[str]:
    return {layer for image in images for layer in image_set.images[image.path.rsplit("/", 1)[1]]}


def _pull(mode: str, inventory: Path, lab, union: list, floor: float, rate: str) -> dict:
    """Every node forgets the images, then one pull-images with deploy1's link limited."""
    refs = " ".join(f"{REGISTRY}/{image.path}:{image.tag}" for image in union)
    for name in (CONTROLLER, *COMPUTES):
        labnet.docker("exec", name, "sh", "-c", f"docker rmi -f {refs} >/dev/null 2>&1; true", check=False, timeout=300)
    labnet.shape(labnet.DEPLOY, rate)
    sent = labnet.sent_bytes(labnet.DEPLOY)
    try:
        seconds = _fab(inventory, "pull-images", "--parallel", "5")
        moved = labnet.sent_bytes(labnet.DEPLOY) - sent
    finally:
        labnet.unshape(labnet.DEPLOY)
    return {"mode": mode, "seconds": seconds, "floor_seconds": floor, "bytes": moved,
            "floor_bytes": floor * labnet.rate_bytes(rate)}  # fmt: skip


def _checks(lab, count: int, out: Path, name: str, repeat: int = 3) -> dict:
    """check-images on ``count`` nodes (one image, ``name``) against ``count`` parallel ``ssh true``."""
    nodes = lab.first(count)
    data = yaml.safe_load(lab.inventory.read_text())
    data["targets"] = [host for host in data["targets"] if host["name"] in {node.name for node in nodes}]
    data["images"] = {"registry": labnet.UPSTREAM, "insecure": True, "names": [name]}
    path = out / "hosts-check.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    _fab(path, "configure-targets")
    check = [_fab(path, "check-images", "--parallel", str(count)) for _ in range(repeat)]
    floor = [_parallel(ssh_command(lab, node, "true") for node in nodes) for _ in range(repeat)]
    return {"nodes": count, "seconds": statistics.median(check), "floor_seconds": statistics.median(floor)}


def _parallel(commands) -> float:
    commands = list(commands)
    began = time.monotonic()
    with ThreadPoolExecutor(max_workers=len(commands)) as pool:
        list(pool.map(lambda command: subprocess.run(command, capture_output=True, check=True, timeout=60), commands))
    return time.monotonic() - began


def markdown(pulls: list[dict], checks: dict, meta: dict) -> str:
    """The two tables, each figure beside its floor and the goal."""
    title = f"kolla-ansible {meta['kolla_ansible']}: {meta['images']} images; per host {meta['per_host']}; "
    lines = [
        title + f"links {meta['rate']}", "",
        "| pull-images | seconds | floor | × floor | bytes from deploy1 | needed | × needed |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]  # fmt: skip
    for row in pulls:
        lines.append(
            f"| {row['mode']} | {row['seconds']:.1f} | {row['floor_seconds']:.1f} | "
            f"{row['seconds'] / row['floor_seconds']:.2f} | {row['bytes'] / MB:.0f} MB | "
            f"{row['floor_bytes'] / MB:.0f} MB | {row['bytes'] / row['floor_bytes']:.3f} |"
        )
    check = f"| fab check-images | {checks['nodes']} | {checks['seconds']:.2f} | {checks['floor_seconds']:.2f} | "
    lines += [
        "", "| check-images | nodes | seconds | ssh true floor | × floor |", "| --- | ---: | ---: | ---: | ---: |",
        check + f"{checks['seconds'] / checks['floor_seconds']:.2f} |",
    ]  # fmt: skip
    return "\n".join(lines) + "\n"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="benchmarks/run.py kolla-sets", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("--rate", default="400mbit", help="deploy1's link limit, tc's notation (default 400mbit)")
    parser.add_argument("--check-nodes", type=int, default=20, help="nodes check-images runs on (default 20)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT / "kolla-sets", help="where results go")
    return parser


if __name__ == "__main__":
    sys.exit(main())
