"""python3 benchmarks/run.py replicas [--instances 1,2,3] [--targets 10] [--rate 400mbit] [--tls] [--out DIR]

More registries, one store: the distribution benchmark's image set in the lab's S3 store
(store1, SeaweedFS), served by K registry instances (deploy1, then replica1..), each
registry host's link limited with tc; `fab pull-images` to N targets, spread over the K
instances by `configure-targets --rebalance`. Floor: N x unique bytes / (K x link rate).
With --tls, every instance serves TLS (self-signed, one CA) and asks for the login
(htpasswd), as production runs them. Writes replicas.md and replicas.json to --out
(replicas-tls.* with --tls); the lab's replicas and store go away after.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import yaml

from tests.lab import paths, status
from tests.lab.engine import docker
from tests.lab.store import down_replicas, replica_names, up_replicas

from . import imageset, labnet
from .distribution import DEFAULT_OUT, _counts, _fab, _inventory, _lab

# The registry name's line out of /etc/hosts, in place (a lab host's /etc/hosts is a bind mount).
SECURE = {"tls": "self-signed", "auth": "htpasswd"}
UNMARK = "grep -v '# kolla-registry$' /etc/hosts > /etc/hosts.unmarked; cat /etc/hosts.unmarked > /etc/hosts; rm -f /etc/hosts.unmarked"


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    counts = args.instances
    _lab(args.targets)
    image_set = imageset.build(imageset.QUICK if args.quick else imageset.FULL, paths().root / "bench-images")
    labnet.start_upstream()
    imageset.push(image_set, labnet.UPSTREAM)
    nodes = [row.name for row in status() if row.name.startswith("node")][: args.targets]
    base = up_replicas(max(counts) - 1, args.out / "hosts-store.yaml")
    rows = []
    try:
        for count in counts:
            rows.append(_pull_with(count, base, image_set, nodes, args))
    finally:
        _restore(nodes)
    rate = labnet.rate_bytes(args.rate)
    text = markdown(rows, image_set, len(nodes), args.rate, rate)
    name = "replicas-tls" if args.tls else "replicas"
    (args.out / f"{name}.md").write_text(text)
    (args.out / f"{name}.json").write_text(json.dumps({"rate": args.rate, "targets": len(nodes), "tls": args.tls,
                                                       "unique_bytes": image_set.unique_bytes, "rows": rows}, indent=2))  # fmt: skip
    print(text)
    return 1 if any(row.get("error") for row in rows) else 0


def _pull_with(count: int, base: Path, image_set: imageset.ImageSet, nodes: list[str], args) -> dict:
    """deploy-host on K instances, the nodes spread over them, then pull-images timed."""
    data = yaml.safe_load(base.read_text())
    replicas = replica_names(count - 1)
    if replicas:
        data["registry"]["replicas"] = data["registry"]["replicas"][: count - 1]
    else:
        data["registry"].pop("replicas", None)
    if args.tls:
        data["registry"].update(SECURE)
    inventory = _inventory(image_set, args.out / f"hosts-{count}.yaml", data)
    try:
        _fab(inventory, "deploy-host")
        _fab(inventory, "sync-images")
        _fab(inventory, "configure-targets", "--rebalance", "-H", ",".join(nodes))
        refs = " ".join(image_set.refs(f"{data['registry']['hostname']}:4000"))
        forget = f"for e in docker podman; do command -v $e >/dev/null && $e rmi -f {refs} >/dev/null 2>&1; done; true"
        for name in nodes:
            docker("exec", name, "sh", "-c", forget, check=False, timeout=300)
        hosts = [labnet.DEPLOY, *replicas]
        for host in hosts:
            labnet.shape(host, args.rate)
        try:
            seconds = _fab(inventory, "pull-images", "-H", ",".join(nodes), "--parallel", str(len(nodes)))
        finally:
            for host in hosts:
                labnet.unshape(host)
        return {"instances": count, "seconds": seconds}
    except RuntimeError as error:
        return {"instances": count, "error": str(error)}


def _restore(nodes: list[str]) -> None:
    """The suite's lab as it was: no replicas, no store, deploy1's registry on its volume."""
    down_replicas()
    for name in nodes:
        # In place: a lab host's /etc/hosts is a bind mount, which sed -i cannot rename over.
        docker("exec", name, "sh", "-c", UNMARK, check=False)
    labnet.on_deploy("rm -f /etc/kolla-registry/registry.env")
    for name in nodes:
        docker("exec", name, "sh", "-c", "rm -rf /etc/docker/certs.d/kolla-registry.internal:4000", check=False)
    _fab(paths().inventory, "deploy-host")


def markdown(rows: list[dict], image_set: imageset.ImageSet, targets: int, rate_name: str, rate: float) -> str:
    unique = image_set.unique_bytes
    first = next((row for row in rows if row.get("instances") == 1 and "seconds" in row), None)
    lines = [
        (f"{targets} targets pull {len(image_set.images)} images ({unique / 1e6:.0f} MB unique each); every registry "
        f"host's link at {rate_name}."),
        "",
        "| instances K | seconds | floor N × unique / (K × rate) | × floor | throughput | × K=1 | target ≥ 0.8 × K |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in rows:
        floor = targets * unique / (row["instances"] * rate)
        if row.get("error"):
            lines.append(f"| {row['instances']} | failed: {row['error'][:100]} | {floor:.1f} s | | | | |")
            continue
        throughput = targets * unique / row["seconds"]
        gain = throughput / (targets * unique / first["seconds"]) if first else float("nan")
        met = "met" if gain >= 0.8 * row["instances"] else "MISSED"
        lines.append(
            f"| {row['instances']} | {row['seconds']:.1f} s | {floor:.1f} s | {row['seconds'] / floor:.2f} "
            f"| {throughput * 8 / 1e6:.0f} Mbit/s | {gain:.2f} | {met} |"
        )
    return "\n".join(lines) + "\n"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="benchmarks/run.py replicas", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("--instances", type=_counts, default=[1, 2, 3], help="registry instances K (default 1,2,3)")
    parser.add_argument("--targets", type=int, default=10, help="targets that pull (default 10)")
    parser.add_argument("--rate", default="400mbit", help="each registry host's link (default 400mbit)")
    parser.add_argument("--quick", action="store_true", help="the small image set")
    parser.add_argument("--tls", action="store_true", help="every instance with TLS (self-signed) and the login")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"where results go (default {DEFAULT_OUT})")
    return parser
