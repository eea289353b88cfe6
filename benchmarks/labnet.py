"""The lab seen from the distribution benchmark: an upstream registry, shaped links, and what
crossed them, measured from outside the hosts (docker exec and nsenter, never SSH)."""

from __future__ import annotations

import re
import subprocess
import threading
import time
import urllib.request

from tests.lab.engine import docker
from tests.lab.host import tool

UPSTREAM_NAME = "bench-upstream"
UPSTREAM_IP = "10.77.0.4"
UPSTREAM = f"{UPSTREAM_IP}:5000"
DEPLOY = "deploy1"
DOCKER_ROOT = "/var/lib/docker"


def start_upstream() -> None:
    """A registry:2 on the lab network playing quay.io (kept across runs: its images are made once)."""
    running = docker("inspect", "-f", "{{.State.Running}}", UPSTREAM_NAME, check=False)
    if running.stdout.strip() != "true":
        docker("rm", "-f", UPSTREAM_NAME, check=False)
        docker(
            "run", "-d", "--name", UPSTREAM_NAME, "--network", "kolla-lab", "--ip", UPSTREAM_IP,
            "--label", "kolla-lab", "registry:2",
        )  # fmt: skip
    wait_for_registry(UPSTREAM)


def wait_for_registry(address: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"http://{address}/v2/", timeout=5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.3)


def rate_bytes(rate: str) -> float:
    """``400mbit`` -> bytes per second."""
    match = re.fullmatch(r"(\d+(?:\.\d+)?)([kmg])bit", rate.strip().lower())
    if not match:
        raise ValueError(f"--rate: {rate!r} is not like 400mbit")
    return float(match.group(1)) * {"k": 1e3, "m": 1e6, "g": 1e9}[match.group(2)] / 8


def _pid(container: str) -> str:
    return docker("inspect", "-f", "{{.State.Pid}}", container).stdout.strip()


def _in_netns(container: str, *command: str) -> str:
    done = subprocess.run(
        [tool("nsenter"), "-t", _pid(container), "-n", *command], capture_output=True, text=True, check=True
    )
    return done.stdout


def shape(container: str, rate: str) -> None:
    """Limit what ``container`` sends on its lab interface to ``rate`` (a token bucket)."""
    _in_netns(container, "tc", "qdisc", "replace", "dev", "eth0", "root", "tbf", "rate", rate,
              "burst", "256kb", "latency", "100ms")  # fmt: skip


def unshape(container: str) -> None:
    subprocess.run(
        [tool("nsenter"), "-t", _pid(container), "-n", "tc", "qdisc", "del", "dev", "eth0", "root"],
        capture_output=True,
        check=False,
    )


def sent_bytes(container: str) -> int:
    """Bytes ``container`` has sent on eth0 (its own network namespace's counters)."""
    for line in _in_netns(container, "cat", "/proc/net/dev").splitlines():
        if line.strip().startswith("eth0:"):
            return int(line.split(":", 1)[1].split()[8])
    raise RuntimeError(f"{container}: no eth0 in /proc/net/dev")


def cpu_times() -> tuple[int, int]:
    """(busy, total) clock ticks of this machine's CPUs so far: every lab host, registry and node shares them."""
    with open("/proc/stat") as stat:
        ticks = [int(field) for field in stat.readline().split()[1:9]]  # user .. steal; guest is inside user
    idle = ticks[3] + ticks[4]  # idle, iowait
    return sum(ticks) - idle, sum(ticks)


def cpu_busy(before: tuple[int, int], after: tuple[int, int]) -> float:
    """The share of the machine's CPU time that was busy between two ``cpu_times()``."""
    total = after[1] - before[1]
    return (after[0] - before[0]) / total if total else 0.0


def on_deploy(script: str, timeout: float = 1800) -> str:
    result = docker("exec", DEPLOY, "sh", "-c", script, check=False, timeout=timeout)
    if result.returncode != 0:
        raise RuntimeError(f"{DEPLOY}: {script.splitlines()[0]!r}: {(result.stderr or result.stdout).strip()[-300:]}")
    return result.stdout


def disk_used() -> int:
    """Bytes under deploy1's Docker root: its image store and the registry's volume."""
    return int(on_deploy(f"du -sb {DOCKER_ROOT} | cut -f1").strip())


class PeakMemory:
    """The highest summed RSS of some commands on deploy1, sampled every 0.2 s while it runs."""

    def __init__(self, commands: tuple[str, ...]) -> None:
        self.commands = commands
        self.peak = 0
        self._process = subprocess.Popen(
            [tool("docker"), "exec", DEPLOY, "sh", "-c", "while :; do ps -eo rss=,comm=; echo END; sleep 0.2; done"],
            env=_docker_env(),
            stdout=subprocess.PIPE,
            text=True,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        total = 0
        for line in self._process.stdout:
            if line.strip() == "END":
                self.peak, total = max(self.peak, total), 0
                continue
            parts = line.split(None, 1)
            if len(parts) == 2 and parts[1].strip() in self.commands:
                total += int(parts[0]) * 1024

    def stop(self) -> int:
        self._process.terminate()
        self._process.wait(timeout=10)
        self._reader.join(timeout=5)
        return self.peak


def _docker_env() -> dict[str, str]:
    from tests.lab.engine import docker_env

    return docker_env()
