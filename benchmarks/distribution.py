"""python3 benchmarks/run.py distribution [--quick] [--rate 400mbit] [--targets 5,10] [--only airgap] [--out DIR]

Images at link speed. Fills the lab's upstream registry (bench-upstream, 10.77.0.4) with a
Kolla-like set of incompressible layers, limits the upstream's link with tc, and times on
deploy1, each from an empty registry and then again as a no-op: `fab sync-images`, Debian's
`skopeo sync`, and the `docker pull/tag/push` loop. Then the air gap: `fab export-images` on this
machine from the same shaped upstream into a bundle, and `fab sync-images --locked` from it into
deploy1's emptied registry (airgap_bench.py). Then `fab pull-images` to N targets with deploy1's
own link limited the same way. Writes distribution.md, .json and .png to --out. `--only airgap` runs
the air gap alone (and writes airgap.md and airgap.json).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import yaml

from tests.lab import config as lab_config
from tests.lab import grown, paths, status, up
from tests.lab.engine import docker

from . import airgap_bench, dist_report, imageset, labnet
from .imageset import NAMESPACE, TAG

DEFAULT_OUT = Path(__file__).resolve().parent / "out"
FAB = Path(sys.executable).with_name("fab")
REGISTRY = f"{lab_config.node_ip(labnet.DEPLOY)}:4000"
# skopeo and the docker loop push, but the registry nodes reach is read-only: they push into a writable
# registry on deploy1's loopback, on the same volume (as sync-images writes through its writer's socket).
BENCH_WRITER = "127.0.0.1:5001"
VOLUME_DATA = "/var/lib/docker/volumes/registry/_data"
# What each method runs on deploy1, for its peak memory.
PROCESSES = {"fab sync-images": ("python3",), "skopeo sync": ("skopeo",), "docker pull/push": ("dockerd", "docker")}


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    sizes = imageset.QUICK if args.quick else imageset.FULL
    started = time.time()
    _lab(max(args.targets))
    image_set = imageset.build(sizes, paths().root / "bench-images")
    labnet.start_upstream()
    imageset.push(image_set, labnet.UPSTREAM)
    inventory = _inventory(image_set, args.out / "hosts.yaml")
    _fab(inventory, "deploy-host")
    labnet.on_deploy("command -v skopeo >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -q skopeo")
    rate = labnet.rate_bytes(args.rate)
    syncs = [] if args.only else _syncs(image_set, inventory, args.rate)
    airgap = airgap_bench.run(image_set, inventory, args.rate, args.out, _fab, _empty_registry)
    pulls = [] if args.only else _pulls(image_set, inventory, args.rate, args.targets)
    meta = {
        **run_meta(started, args.rate, "quick" if args.quick else "full", image_set),
        "logical_bytes": image_set.logical_bytes,
        "floor_seconds": image_set.unique_bytes / rate,
    }
    document = {"meta": meta, "syncs": syncs, "airgap": airgap, "pulls": pulls}
    if args.only:
        text = airgap_bench.heading(meta) + "\n".join(airgap_bench.markdown(airgap, meta)) + "\n"
        (args.out / "airgap.md").write_text(text)
        (args.out / "airgap.json").write_text(json.dumps(document, indent=2))
        print(text)
        print(f"bench: wrote {args.out}/airgap.md, airgap.json", file=sys.stderr)
        return 1 if any(row.get("error") for row in airgap) else 0
    text = dist_report.markdown(syncs, pulls, meta) + "\n".join(airgap_bench.markdown(airgap, meta)) + "\n"
    (args.out / "distribution.md").write_text(text)
    (args.out / "distribution.json").write_text(json.dumps(document, indent=2))
    dist_report.plot(args.out / "distribution.png", syncs, pulls, meta)
    print(text)
    print(f"bench: wrote {args.out}/distribution.md, distribution.json, distribution.png", file=sys.stderr)
    return 1 if any(row.get("error") for row in [*syncs, *airgap, *pulls]) else 0


def run_meta(started: float, rate: str, set_name: str, image_set: imageset.ImageSet) -> dict:
    """What every image benchmark's report says of its run: when, how long, the links, the set, the CPUs."""
    return {
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "seconds": round(time.time() - started),
        "rate": rate,
        "set": set_name,
        "images": len(image_set.images),
        "unique_bytes": image_set.unique_bytes,
        "cpus": os.cpu_count(),
    }


def _lab(targets: int) -> None:
    """The lab with at least ``targets`` targets, its hosts' profiles kept."""
    running = [row.name for row in status() if row.state == "running" and row.name != lab_config.DEPLOY_HOST]
    if len(running) < targets or not paths().inventory.exists():
        up(grown(targets))


def _inventory(image_set: imageset.ImageSet, path: Path, data: dict | None = None) -> Path:
    """The lab's inventory (or ``data``) with an images: section naming the set in bench-upstream."""
    data = data or yaml.safe_load(paths().inventory.read_text())
    data["images"] = {
        "registry": labnet.UPSTREAM,
        "insecure": True,
        "namespace": NAMESPACE,
        "tag": TAG,
        "services": list(image_set.images),
    }
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def _fab(inventory: Path, *args: str, lines: list[tuple[float, str]] | None = None) -> float:
    """Run fab; the seconds it took (``lines`` gets each output line with the seconds it came at). A failure
    raises with its last lines; a run longer than an hour is stopped."""
    env = {**os.environ, "KOLLA_REGISTRY_HOSTS": str(inventory)}
    began = time.monotonic()
    said = []
    with subprocess.Popen([str(FAB), *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) as fab:
        stop = threading.Timer(3600, fab.kill)
        stop.start()
        try:
            for line in fab.stdout:
                said.append(line)
                if lines is not None:
                    lines.append((time.monotonic() - began, line.rstrip("\n")))
        finally:
            stop.cancel()
        code = fab.wait()
    seconds = time.monotonic() - began
    if code != 0:
        raise RuntimeError(f"fab {' '.join(args)}: exit {code}: {''.join(said)[-800:]}")
    return seconds


def _empty_registry() -> None:
    """deploy1's registry with nothing in it, and nothing cached anywhere on deploy1."""
    labnet.on_deploy(
        f"docker stop -t 5 registry >/dev/null && rm -rf {VOLUME_DATA}/docker && docker start registry >/dev/null\n"
        f"docker images --format '{{{{.Repository}}}}:{{{{.Tag}}}}' | grep '/{NAMESPACE}/' | xargs -r docker rmi -f >/dev/null\n"
        "rm -rf /var/lib/containers/cache /root/.local/share/containers /var/lib/containers/storage"
    )
    labnet.wait_for_registry(REGISTRY)


def _skopeo(image_set: imageset.ImageSet) -> str:
    source = {labnet.UPSTREAM: {"tls-verify": False, "images": {f"{NAMESPACE}/{s}": [TAG] for s in image_set.images}}}
    encoded = json.dumps(source)  # JSON is YAML
    return (
        f"printf '%s' '{encoded}' > /root/bench-sync.yaml && "
        f"skopeo sync --src yaml --dest docker --dest-tls-verify=false /root/bench-sync.yaml {BENCH_WRITER}"
    )


def _docker_loop(image_set: imageset.ImageSet) -> str:
    names = " ".join(f"{NAMESPACE}/{service}:{TAG}" for service in image_set.images)
    # Four at once, as sync-images did with this method (sync_parallel 4).
    one = f'docker pull -q {labnet.UPSTREAM}/$0 && docker tag {labnet.UPSTREAM}/$0 {BENCH_WRITER}/$0 && docker push -q {BENCH_WRITER}/$0'
    return f"printf '%s\\n' {names} | xargs -P 4 -n 1 sh -c '{one}' >/dev/null"


def _bench_writer(on: bool) -> None:
    """The writable registry skopeo and the docker loop push into (see BENCH_WRITER), or none."""
    labnet.on_deploy("docker rm -f bench-writer >/dev/null 2>&1; true")
    if on:
        labnet.on_deploy(
            f"docker run -d --name bench-writer --network host -e REGISTRY_HTTP_ADDR={BENCH_WRITER} "
            f"-v registry:/var/lib/registry registry:2 >/dev/null && "
            f"i=0; until curl -sf -o /dev/null http://{BENCH_WRITER}/v2/; do i=$((i + 1)); [ $i -lt 100 ] || exit 1; sleep 0.2; done"
        )


def _trust_upstream(on: bool) -> None:
    """The docker loop needs deploy1's Docker to trust the plain-HTTP upstream; the others do not."""
    action = "add" if on else "remove"
    labnet.on_deploy(f"""python3 - <<'PY'
import json
path = "/etc/docker/daemon.json"
config = json.load(open(path))
listed = config.setdefault("insecure-registries", [])
if "{action}" == "add" and "{labnet.UPSTREAM}" not in listed:
    listed.append("{labnet.UPSTREAM}")
elif "{action}" == "remove" and "{labnet.UPSTREAM}" in listed:
    listed.remove("{labnet.UPSTREAM}")
open(path, "w").write(json.dumps(config, indent=2) + "\\n")
PY
systemctl reload docker && sleep 1""")


def _syncs(image_set: imageset.ImageSet, inventory: Path, rate: str) -> list[dict]:
    methods = {
        "fab sync-images": lambda: _fab(inventory, "sync-images"),
        "skopeo sync": lambda: _timed(_skopeo(image_set)),
        "docker pull/push": lambda: _timed(_docker_loop(image_set)),
    }
    rows = []
    for name, copy in methods.items():
        _trust_upstream(name == "docker pull/push")
        _empty_registry()
        _bench_writer(name != "fab sync-images")
        labnet.shape(labnet.UPSTREAM_NAME, rate)
        try:
            rows.append(_measure(name, copy, image_set))
        except RuntimeError as error:
            rows.append({"method": name, "error": str(error)})
        finally:
            labnet.unshape(labnet.UPSTREAM_NAME)
    _bench_writer(False)
    _trust_upstream(False)
    return rows


def _timed(script: str) -> float:
    began = time.monotonic()
    labnet.on_deploy(script)
    return time.monotonic() - began


def _measure(name: str, copy, image_set: imageset.ImageSet) -> dict:
    """First run from an empty registry, with bytes, disk and memory; then the no-op run."""
    sent, disk = labnet.sent_bytes(labnet.UPSTREAM_NAME), labnet.disk_used()
    memory = labnet.PeakMemory(PROCESSES[name])
    try:
        first = copy()
    finally:
        peak = memory.stop()
    row = {
        "method": name,
        "first_seconds": first,
        "upstream_bytes": labnet.sent_bytes(labnet.UPSTREAM_NAME) - sent,
        "disk_bytes": labnet.disk_used() - disk,
        "peak_rss_bytes": peak,
    }
    row["noop_seconds"] = copy()
    return row


def _pulls(image_set: imageset.ImageSet, inventory: Path, rate: str, counts: list[int]) -> list[dict]:
    """pull-images to N targets from a full registry, deploy1's link limited."""
    _empty_registry()
    _fab(inventory, "deploy-host")  # the probe, which configure-targets pulls
    _fab(inventory, "sync-images")
    targets = [row.name for row in status() if row.name != lab_config.DEPLOY_HOST]
    _fab(inventory, "configure-targets", "-H", ",".join(targets[: max(counts)]))
    rows = []
    for count in counts:
        nodes = ",".join(targets[:count])
        refs = " ".join(image_set.refs(REGISTRY))
        forget = f"for e in docker podman; do command -v $e >/dev/null && $e rmi -f {refs} >/dev/null 2>&1; done; true"
        for name in targets[:count]:
            docker("exec", name, "sh", "-c", forget, check=False, timeout=300)
        labnet.shape(labnet.DEPLOY, rate)
        try:
            seconds = _fab(inventory, "pull-images", "-H", nodes, "--parallel", str(count))
            rows.append({"targets": count, "seconds": seconds})
        except RuntimeError as error:
            rows.append({"targets": count, "error": str(error)})
        finally:
            labnet.unshape(labnet.DEPLOY)
    return rows


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="benchmarks/run.py distribution", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("--quick", action="store_true", help="a small set (3 images, ~11 MB), as CI runs it")
    parser.add_argument("--rate", default="400mbit", help="the links' limit, tc's notation (default 400mbit)")
    parser.add_argument("--targets", type=_counts, default=[5, 10], help="targets to pull to (default 5,10)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"where results go (default {DEFAULT_OUT})")
    parser.add_argument("--only", choices=["airgap"], help="only this part: airgap (export, then the locked import)")
    return parser


def _counts(text: str) -> list[int]:
    try:
        counts = sorted({int(part) for part in text.split(",") if part.strip()})
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a list of numbers: {text!r}") from None
    if not counts or counts[0] < 1:
        raise argparse.ArgumentTypeError("give numbers of targets >= 1, e.g. 5,10")
    return counts
