"""python3 benchmarks/run.py replicas [--instances 1,2,3,4] [--targets 10,20] [--tls-targets 10]
[--rate 100mbit] [--quick] [--out DIR]

More registries, one store, with the links as the wall: a Kolla-like set of 12 images (126 MB
unique, no layer above 20 MB) in the lab's S3 store (store1, SeaweedFS), served by K registry
instances (deploy1, then replica1..), each registry host's link limited with tc; `fab
pull-images` to N targets at once, spread over the K instances by `configure-targets
--rebalance`. Floor: N x unique bytes / (K x link rate). Every K at each N of --targets in plain
HTTP, then at each N of --tls-targets with TLS (self-signed, one CA) and the login (htpasswd) on
every instance, as production runs them, and TLS against plain at the same K and N.

Every host of the lab shares this machine's CPUs, so each pull also reports its busiest
instance's link use (bytes it sent / (rate x seconds)) and how busy the machine's CPUs were:
the figures measure the links while the first is high and the second is not. Writes
replicas.md and replicas.json to --out; the lab's replicas and store go away after.
"""

from __future__ import annotations

import argparse
import json
import shlex
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import yaml

from tests.lab import paths
from tests.lab.engine import docker
from tests.lab.store import HOSTNAME, down_replicas, replica_names, up_replicas

from . import imageset, labnet
from .distribution import DEFAULT_OUT, _counts, _fab, _inventory, _lab, run_meta

SECURE = {"tls": "self-signed", "auth": "htpasswd"}
# The registry name's line out of /etc/hosts, in place (a lab host's /etc/hosts is a bind mount, which
# sed -i cannot rename over); and the CA a TLS pass left, for either engine.
UNMARK = (
    "grep -v '# kolla-registry$' /etc/hosts > /etc/hosts.unmarked; cat /etc/hosts.unmarked > /etc/hosts; "
    f"rm -f /etc/hosts.unmarked; rm -rf /etc/docker/certs.d/{HOSTNAME}:4000 /etc/containers/certs.d/{HOSTNAME}:4000"
)
TLS_WITHIN = 0.10  # issue 21: TLS and login cost at most 10% of the plain throughput


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    started = time.time()
    passes = [(False, args.targets), (True, args.tls_targets)]
    nodes = _lab_nodes(max(n for _, sizes in passes for n in sizes))
    image_set = imageset.build(
        imageset.QUICK if args.quick else imageset.LINKS, paths().root / "bench-images"
    )
    labnet.start_upstream()
    imageset.push(image_set, labnet.UPSTREAM)
    base = up_replicas(max(args.instances) - 1, args.out / "hosts-store.yaml")
    rows = []
    try:
        for tls, sizes in passes:
            for count in args.instances if sizes else []:
                rows += _pulls_with(count, tls, sizes, base, image_set, nodes, args)
    finally:
        _restore(nodes)
    meta = run_meta(started, args.rate, "quick" if args.quick else "links", image_set)
    text = markdown(rows, meta)
    (args.out / "replicas.md").write_text(text)
    (args.out / "replicas.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=2))
    print(text)
    return 1 if any(row.get("error") for row in rows) else 0


def _lab_nodes(count: int) -> list[str]:
    """node1..node<count>, the lab grown to them if it has fewer."""
    _lab(count)
    return [f"node{i}" for i in range(1, count + 1)]


def _pulls_with(
    count: int, tls: bool, sizes: list[int], base: Path, image_set, nodes: list[str], args
) -> list[dict]:
    """deploy-host on K instances (plain, or with TLS and the login), then a timed pull to the first N nodes
    at each N."""
    data = yaml.safe_load(base.read_text())
    replicas = replica_names(count - 1)
    if replicas:
        data["registry"]["replicas"] = data["registry"]["replicas"][: count - 1]
    else:
        data["registry"].pop("replicas", None)
    if tls:
        data["registry"].update(SECURE)
    inventory = _inventory(image_set, args.out / f"hosts-{count}{'-tls' if tls else ''}.yaml", data)
    label = {"tls": tls, "instances": count}
    try:
        _fab(inventory, "deploy-host")
        _fab(inventory, "sync-images")  # a no-op after the first: every K shares the store
    except RuntimeError as error:
        return [{**label, "targets": n, "error": str(error)} for n in sizes]
    rows = []
    for n in sizes:
        try:
            measured = _pull(
                inventory,
                [labnet.DEPLOY, *replicas],
                nodes[:n],
                data["registry"]["hostname"],
                args.rate,
            )
            rows.append({**label, "targets": n, **measured})
        except RuntimeError as error:
            rows.append({**label, "targets": n, "error": str(error)})
    return rows


def _pull(inventory: Path, hosts: list[str], nodes: list[str], hostname: str, rate: str) -> dict:
    """The nodes spread over the instances and emptied of the set, then pull-images with every instance's link
    limited: its seconds, the bytes each instance sent, the machine's CPU use, the most nodes on one instance."""
    _fab(inventory, "configure-targets", "--rebalance", "-H", ",".join(nodes))
    placed = _forget(nodes, hostname)
    for host in hosts:
        labnet.shape(host, rate)
    try:
        sent = {host: labnet.sent_bytes(host) for host in hosts}
        cpu = labnet.cpu_times()
        seconds = _fab(inventory, "pull-images", "-H", ",".join(nodes), "--parallel", str(len(nodes)))
        busy = labnet.cpu_busy(cpu, labnet.cpu_times())
        sent = {host: labnet.sent_bytes(host) - before for host, before in sent.items()}
    finally:
        for host in hosts:
            labnet.unshape(host)
    most = max(Counter(placed.values()).values())
    return {"seconds": seconds, "sent_bytes": sent, "cpu_busy": busy, "most_nodes": most, "placed": placed}


def _forget(nodes: list[str], hostname: str) -> dict[str, str]:
    """Each node without any image of the bench namespace (under any registry's name: another benchmark's copy
    would share the layers), so that the pull moves every byte; the address it resolves ``hostname`` to."""
    script = (
        "for e in docker podman; do command -v $e >/dev/null || continue; "
        f"$e images --format '{{{{.Repository}}}}:{{{{.Tag}}}}' | grep -F /{imageset.NAMESPACE}/ "
        "| xargs -r $e rmi -f >/dev/null 2>&1; done; "
        f"getent hosts {shlex.quote(hostname)} | awk '{{print $1}}'"
    )
    return dict(zip(nodes, _on_each(nodes, script, timeout=300), strict=True))


def _on_each(nodes: list[str], script: str, timeout: float = 60) -> list[str]:
    """``script`` on every node at once (docker exec, no SSH); what each printed."""

    def one(name: str) -> str:
        return docker("exec", name, "sh", "-c", script, check=False, timeout=timeout).stdout.strip()

    with ThreadPoolExecutor(max_workers=max(1, len(nodes))) as pool:
        return list(pool.map(one, nodes))


def _restore(nodes: list[str]) -> None:
    """The suite's lab as it was: no replicas, no store, deploy1's registry on its volume."""
    down_replicas()
    _on_each(nodes, UNMARK)
    labnet.on_deploy("rm -f /etc/kolla-registry/registry.env")
    _fab(paths().inventory, "deploy-host")


def markdown(rows: list[dict], meta: dict) -> str:
    """One table per mode and N, then TLS against plain at the same K and N."""
    unique, rate = meta["unique_bytes"], labnet.rate_bytes(meta["rate"])
    lines = [
        (
            f"{meta['images']} images, {unique / 1e6:.0f} MB unique per node; every registry host's link at "
            f"{meta['rate']} (tc); {meta['cpus']} CPUs shared by every host; {meta['seconds']} s in all."
        ),
        "",
    ]
    for tls in (False, True):
        for n in sorted({row["targets"] for row in rows if row["tls"] == tls}):
            group = [row for row in rows if row["tls"] == tls and row["targets"] == n]
            lines += _table(group, n, tls, unique, rate)
    lines += _tls_against_plain(rows, unique)
    return "\n".join(lines) + "\n"


def _table(rows: list[dict], targets: int, tls: bool, unique: int, rate: float) -> list[str]:
    lines = [
        f"{targets} targets, {'TLS and login' if tls else 'plain HTTP'}:",
        "",
        (
            "| K | seconds | floor N × unique / (K × rate) | × floor | throughput | × K=1 | goal ≥ 0.8 × K "
            "| most nodes on one instance | busiest link used | machine CPU busy |"
        ),
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    first = next((row for row in rows if row["instances"] == 1 and "seconds" in row), None)
    for row in rows:
        count = row["instances"]
        floor = targets * unique / (count * rate)
        if row.get("error"):
            lines.append(f"| {count} | failed: {row['error'][:100]} | {floor:.1f} s | | | | | | | |")
            continue
        gain = _throughput(row, unique) / _throughput(first, unique) if first else float("nan")
        met = "met" if gain >= 0.8 * count else f"MISSED ({0.8 * count:.1f} wanted)"
        link = max(row["sent_bytes"].values()) / (rate * row["seconds"])
        lines.append(
            f"| {count} | {row['seconds']:.1f} s | {floor:.1f} s | {row['seconds'] / floor:.2f} "
            f"| {_throughput(row, unique) * 8 / 1e6:.0f} Mbit/s | {gain:.2f} | {met} "
            f"| {row['most_nodes']} of {targets} | {link:.0%} | {row['cpu_busy']:.0%} |"
        )
    return [*lines, ""]


def _tls_against_plain(rows: list[dict], unique: int) -> list[str]:
    plain = {(row["instances"], row["targets"]): row for row in rows if not row["tls"] and "seconds" in row}
    pairs = [(row, plain[(row["instances"], row["targets"])]) for row in rows
             if row["tls"] and "seconds" in row and (row["instances"], row["targets"]) in plain]  # fmt: skip
    if not pairs:
        return []
    lines = [
        f"TLS and login against plain HTTP (issue 21: within {TLS_WITHIN:.0%} of the plain throughput):",
        "",
        "| N | K | plain | TLS and login | TLS / plain | within 10% |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for secure, bare in pairs:
        ratio = _throughput(secure, unique) / _throughput(bare, unique)
        lines.append(
            f"| {secure['targets']} | {secure['instances']} | {_throughput(bare, unique) * 8 / 1e6:.0f} Mbit/s "
            f"| {_throughput(secure, unique) * 8 / 1e6:.0f} Mbit/s | {ratio:.2f} "
            f"| {'yes' if ratio >= 1 - TLS_WITHIN else 'NO'} |"
        )
    return [*lines, ""]


def _throughput(row: dict, unique: int) -> float:
    """Bytes per second into all the nodes together."""
    return row["targets"] * unique / row["seconds"]


def _rate(text: str) -> str:
    try:
        labnet.rate_bytes(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    return text


def _counts_or_none(text: str) -> list[int]:
    return [] if text.strip().lower() in ("", "none", "0") else _counts(text)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="benchmarks/run.py replicas", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument(
        "--instances", type=_counts, default=[1, 2, 3, 4], help="registry instances K (default 1,2,3,4)"
    )
    parser.add_argument(
        "--targets", type=_counts, default=[10, 20], help="targets N, plain HTTP (default 10,20)"
    )
    parser.add_argument("--tls-targets", type=_counts_or_none, default=[10],
                        help="targets N with TLS and the login on every instance (default 10; none: no TLS pass)")  # fmt: skip
    parser.add_argument(
        "--rate", type=_rate, default="100mbit", help="each registry host's link (default 100mbit)"
    )
    parser.add_argument("--quick", action="store_true", help="the small image set (3 images, 11 MB)")
    parser.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, help=f"where results go (default {DEFAULT_OUT})"
    )
    return parser
