"""A SeaweedFS S3 store on loopback, and registry instances on it with the env the tool writes."""

from __future__ import annotations

import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from .registries import Registry, free_port

CONFIG = """version: 0.1
log:
  level: info
storage:
  filesystem:
    rootdirectory: {root}
http:
  addr: 127.0.0.1:{port}
"""


@dataclass
class Store:
    """``weed server`` with its S3 gateway on 127.0.0.1; its data and log in ``folder``."""

    folder: Path
    process: subprocess.Popen
    port: int

    @classmethod
    def start(cls, weed: str, folder: Path) -> Store:
        folder.mkdir(parents=True, exist_ok=True)
        ports = {name: free_port() for name in PORT_FLAGS}
        flags = [f"-{name}={port}" for name, port in ports.items()]
        command = [weed, "server", f"-dir={folder / 'data'}", "-s3", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", *flags]
        (folder / "data").mkdir(exist_ok=True)
        with open(folder / "log", "ab") as log:
            process = subprocess.Popen(command, stdout=log, stderr=log)
        store = cls(folder, process, ports["s3.port"])
        store._wait_for_bucket("registry")
        return store

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _wait_for_bucket(self, bucket: str) -> None:
        """Make the bucket as soon as the gateway takes it (about 8 s after start)."""
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            try:
                request = urllib.request.Request(f"{self.endpoint}/{bucket}", method="PUT")
                urllib.request.urlopen(request, timeout=2).close()
                return
            except urllib.error.HTTPError as error:
                if error.code == 409:  # already there
                    return
            except OSError:
                pass
            time.sleep(0.5)
        self.stop()
        raise RuntimeError(f"weed did not make its bucket: {(self.folder / 'log').read_text()[-2000:]}")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            self.process.kill()


# Every port weed listens on, each a free one, so that nothing else on the machine is in its way.
PORT_FLAGS = (
    "master.port", "master.port.grpc", "volume.port", "volume.port.grpc", "filer.port",
    "filer.port.grpc", "s3.port", "s3.port.grpc", "s3.port.iceberg", "s3.port.lance",
)  # fmt: skip


def start_instance(folder: Path, env_text: str) -> Registry:
    """``docker-registry serve`` with the tool's env file applied (as ``docker run --env-file`` would)."""
    folder.mkdir(parents=True, exist_ok=True)
    registry = Registry(folder, port=free_port())
    config = folder / "config.yml"
    # The config names filesystem storage, as the registry:2 image's does: the env turns it into S3.
    config.write_text(CONFIG.format(root=folder / "unused", port=registry.port))
    return registry.serve(config, env={"PATH": "/usr/bin:/bin", **env_file(env_text)})


def env_file(text: str) -> dict[str, str]:
    """KEY=VALUE lines as ``docker run --env-file`` reads them (comments and blank lines skipped)."""
    pairs = (line.split("=", 1) for line in text.splitlines() if "=" in line and not line.startswith("#"))
    return {key: value for key, value in pairs}
