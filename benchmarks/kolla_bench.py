"""Each host its own images: pull-images with kolla-ansible's per-host sets against every image to every
target, and check-images against the ``ssh true`` floor.

python3 benchmarks/run.py kolla-sets [--rate 400mbit] [--repeat 3] [--check-nodes 20] [--out DIR]

A cloud of 1 controller and 4 computes from the lab: kolla-ansible (its own virtualenv) computes
what `kolla-ansible pull` would pull on each; the lab's upstream holds Kolla-like stand-ins under
those names (base + openstack-base + a leaf each, incompressible), deploy1's registry is filled
with sync-images, and deploy1's link is limited with tc (every pull crosses it). For each mode,
--repeat times, every node first forgets the images, then one pull-images: bytes that left deploy1,
seconds (median [min-max]), and each against its floor (the bytes each node needs / the rate).
Whatever registry deploy1 has (another benchmark's TLS and login, replicas), it first gets the plain
one on its volume.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import yaml

from fabfile.kolla.imageset import kolla_images
from fabfile.registry.paths import ENV_FILE
from tests.kolla_env import kolla_venv, sample_children
from tests.lab import paths

from . import imageset, labnet
from .distribution import DEFAULT_OUT, REGISTRY, _empty_registry, _fab
from .imageset import MB
from .nodes import Lab, ensure_lab, ssh_command

SIZES = imageset.Sizes(base=40 * MB, openstack_base=40 * MB, leaf=4 * MB, services=0)
CONTROLLER, COMPUTES = "node1", ("node2", "node3", "node4", "node5")
NODES = (CONTROLLER, *COMPUTES)
OWN, ALL = "each host its own images", "every image to every target"


@dataclass
class Cloud:
    """The lab as the pulls find it: the tool's two inventories, the images, each mode's floor."""

    lab: Lab
    union: list
    inventories: dict[str, Path]
    floors: dict[str, float]
    meta: dict


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    started = time.time()
    cloud = prepare(args.out, args.rate, max(5, args.check_nodes))
    try:
        pulls = [pull_row(cloud, mode, args.rate, args.repeat) for mode in (OWN, ALL)]
    finally:
        forget(cloud.union)  # the nodes as they were: the suite's kolla e2e test reads what they hold
    tag = cloud.union[0].tag
    checks = _checks(cloud.lab, args.check_nodes, args.out, f"{cloud.union[0].path}:{tag}", args.repeat)
    meta = {"date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)), "rate": args.rate,
            "repeat": args.repeat, **cloud.meta}  # fmt: skip
    text = markdown(pulls, checks, meta)
    (args.out / "kolla-sets.md").write_text(text)
    (args.out / "kolla-sets.json").write_text(json.dumps({"meta": meta, "pulls": pulls, "checks": checks}, indent=2))
    print(text)
    return 0


def prepare(out: Path, rate: str, nodes: int) -> Cloud:
    """The lab with ``nodes`` targets; kolla-ansible's sets of node1..5; the stand-ins in the upstream; deploy1's
    plain registry filled with them by sync-images; the nodes configured for it."""
    lab = ensure_lab(nodes)
    venv = kolla_venv()
    inventory, config = _kolla_cloud(lab, venv, out)
    found = kolla_images([str(inventory)], str(config), str(venv))
    sets = {host: {pulled.image for pulled in images} for host, images in found.hosts.items() if images}
    union = sorted({image for images in sets.values() for image in images}, key=lambda image: image.name)
    names = [image.path.rsplit("/", 1)[1] for image in union]
    image_set = imageset.build_named(SIZES, paths().root / "bench-images", names)
    labnet.start_upstream()
    imageset.push(image_set, labnet.UPSTREAM, union[0].tag)
    own, every = _inventories(lab, inventory, config, venv, union, out)
    _plain_registry(own)
    _fab(own, "sync-images")
    _fab(own, "configure-targets")
    needs = {host: sum(image_set.layers[n].size for n in _layers(image_set, images)) for host, images in sets.items()}
    everything = len(sets) * sum(blob.size for blob in image_set.layers.values())
    floors = {OWN: sum(needs.values()) / labnet.rate_bytes(rate), ALL: everything / labnet.rate_bytes(rate)}
    meta = {"kolla_ansible": found.kolla_ansible, "images": len(union),
            "per_host": {host: len(images) for host, images in sets.items()}, "bytes_needed": sum(needs.values())}  # fmt: skip
    return Cloud(lab, union, {OWN: own, ALL: every}, floors, meta)


def _plain_registry(inventory: Path) -> None:
    """deploy1's registry plain HTTP on its volume, emptied, with deploy-host's probe, whatever ran there
    before: the suite's benchmark leaves TLS and a login (read-only), the replicas one may leave an S3 store."""
    labnet.on_deploy(f"rm -f {ENV_FILE}")
    _fab(inventory, "deploy-host")
    _empty_registry()
    _fab(inventory, "deploy-host")  # the probe again, which configure-targets pulls


def _kolla_cloud(lab, venv: Path, out: Path) -> tuple[Path, Path]:
    """kolla-ansible's inventory of the lab's node1 (controller) and node2..5 (computes), and its globals."""
    address = {node.name: node.address for node in lab.targets}
    line = {name: f"{name} ansible_host={address[name]} ansible_user=root ansible_ssh_private_key_file={lab.key}"
            for name in NODES}  # fmt: skip
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
    hosts = [host for host in data["targets"] if host["name"] in NODES]
    every = {**data, "targets": hosts, "images": {**upstream, "names": names}}
    paths = (out / "hosts-own.yaml", out / "hosts-every.yaml")
    for path, content in zip(paths, (own, every), strict=True):
        path.write_text(yaml.safe_dump(content, sort_keys=False))
    return paths


def _layers(image_set: imageset.ImageSet, images: set) -> set[str]:
    return {layer for image in images for layer in image_set.images[image.path.rsplit("/", 1)[1]]}


def pull_row(cloud: Cloud, mode: str, rate: str, repeat: int) -> dict:
    """``repeat`` pulls of ``mode``, each from nodes that forgot the images: the median and its spread."""
    runs = [pull_once(cloud, mode, rate) for _ in range(repeat)]
    return summary(mode, runs, cloud.floors[mode], rate)


def summary(mode: str, runs: list[dict], floor: float, rate: str) -> dict:
    """One table row from the runs: median seconds with min and max, median bytes, each beside its floor."""
    seconds = [run["seconds"] for run in runs]
    return {"mode": mode, "seconds": statistics.median(seconds), "seconds_min": min(seconds),
            "seconds_max": max(seconds), "bytes": statistics.median(run["bytes"] for run in runs),
            "floor_seconds": floor, "floor_bytes": floor * labnet.rate_bytes(rate), "runs": runs}  # fmt: skip


def pull_once(cloud: Cloud, mode: str, rate: str, lines: list[tuple[float, str]] | None = None) -> dict:
    """Every node forgets the images, then one pull-images with deploy1's link limited: its seconds and the
    bytes that left deploy1 (``lines``: fab's output lines, each with its second)."""
    forget(cloud.union)
    labnet.shape(labnet.DEPLOY, rate)
    sent = labnet.sent_bytes(labnet.DEPLOY)
    try:
        seconds = _fab(cloud.inventories[mode], "pull-images", "--parallel", str(len(NODES)), lines=lines)
        moved = labnet.sent_bytes(labnet.DEPLOY) - sent
    finally:
        labnet.unshape(labnet.DEPLOY)
    return {"seconds": seconds, "bytes": moved}


def forget(union: list) -> None:
    """Every node without the benchmark's images (their pull moves every byte again)."""
    refs = " ".join(f"{REGISTRY}/{image.path}:{image.tag}" for image in union)
    script = f"docker rmi -f {refs} >/dev/null 2>&1; true"
    with ThreadPoolExecutor(max_workers=len(NODES)) as pool:
        list(pool.map(lambda name: labnet.docker("exec", name, "sh", "-c", script, check=False, timeout=300), NODES))


def _checks(lab, count: int, out: Path, name: str, repeat: int) -> dict:
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
    return {"nodes": count, "seconds": statistics.median(check), "seconds_min": min(check), "seconds_max": max(check),
            "floor_seconds": statistics.median(floor)}  # fmt: skip


def _parallel(commands) -> float:
    commands = list(commands)
    began = time.monotonic()
    with ThreadPoolExecutor(max_workers=len(commands)) as pool:
        list(pool.map(lambda command: subprocess.run(command, capture_output=True, check=True, timeout=60), commands))
    return time.monotonic() - began


def markdown(pulls: list[dict], checks: dict, meta: dict) -> str:
    """The two tables, each median (with its min and max over the runs) beside its floor."""
    title = f"kolla-ansible {meta['kolla_ansible']}: {meta['images']} images; per host {meta['per_host']}; "
    lines = [
        title + f"links {meta['rate']}; {meta['repeat']} runs each, the median [min-max]", "",
        "| pull-images | seconds | floor | × floor | bytes from deploy1 | needed | × needed |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]  # fmt: skip
    for row in pulls:
        lines.append(
            f"| {row['mode']} | {spread(row, '.1f')} | {row['floor_seconds']:.1f} | "
            f"{row['seconds'] / row['floor_seconds']:.2f} | {row['bytes'] / MB:.0f} MB | "
            f"{row['floor_bytes'] / MB:.0f} MB | {row['bytes'] / row['floor_bytes']:.3f} |"
        )
    check = f"| fab check-images | {checks['nodes']} | {spread(checks, '.2f')} | {checks['floor_seconds']:.2f} | "
    lines += [
        "", "| check-images | nodes | seconds | ssh true floor | × floor |", "| --- | ---: | ---: | ---: | ---: |",
        check + f"{checks['seconds'] / checks['floor_seconds']:.2f} |",
    ]  # fmt: skip
    return "\n".join(lines) + "\n"


def spread(row: dict, style: str) -> str:
    """``15.9 [15.6-16.3]``: the median seconds and, when runs differ, their min and max."""
    median, low, high = (format(row[key], style) for key in ("seconds", "seconds_min", "seconds_max"))
    return median if low == high == median else f"{median} [{low}-{high}]"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="benchmarks/run.py kolla-sets", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("--rate", default="400mbit", help="deploy1's link limit, tc's notation (default 400mbit)")
    parser.add_argument("--repeat", type=_positive, default=3,
                        help="runs of each pull and check, every node emptied first (default 3; the median is shown)")
    parser.add_argument("--check-nodes", type=int, default=20, help="nodes check-images runs on (default 20)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT / "kolla-sets", help="where results go")
    return parser


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive count")
    return value


if __name__ == "__main__":
    sys.exit(main())
