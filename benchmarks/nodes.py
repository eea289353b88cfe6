"""The lab as the benchmark uses it: its targets, reset and counted through ``docker exec``.

Housekeeping never goes over SSH, so every line in a node's sshd log between two
marks belongs to the tool being measured.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import yaml

from tests.lab import config as lab_config
from tests.lab import grown, paths, status, up
from tests.lab.engine import docker
from tests.lab.host import tool

REGISTRY_PORT = 4000
PROBE_PATH = "kolla-registry/probe:latest"
# sshd logs "Starting session: command ..." per exec channel only at VERBOSE.
SSHD_VERBOSE = "/etc/ssh/sshd_config.d/zz-benchmark.conf"
# Seconds left after a reset for the nodes' dockerd and systemd to go quiet, at least; then until their
# CPU use over a window is below QUIET_CPUS (all nodes together), SETTLE_LIMIT seconds at most.
SETTLE_SECONDS = 1.0
SETTLE_WINDOW = 1.0
QUIET_CPUS = 0.15
SETTLE_LIMIT = 60.0


@dataclass(frozen=True)
class Node:
    name: str
    address: str


@dataclass(frozen=True)
class Lab:
    """The lab's paths and the first ``count`` targets of it."""

    inventory: Path
    key: Path
    known_hosts: Path
    deploy_address: str
    targets: tuple[Node, ...]

    @property
    def registry(self) -> str:
        return f"{self.deploy_address}:{REGISTRY_PORT}"

    @property
    def probe(self) -> str:
        return f"{self.registry}/{PROBE_PATH}"

    def first(self, count: int) -> tuple[Node, ...]:
        return self.targets[:count]


def _docker_nodes(rows: dict) -> list[str]:
    return [name for name, row in rows.items() if name.startswith("node") and row.profile.endswith("-docker")]


def ensure_lab(count: int) -> Lab:
    """deploy1 and at least ``count`` running Docker targets (the tools compared configure Docker);
    a bigger lab is used as it is, a smaller one grown with bookworm-docker nodes."""
    rows = {row.name: row for row in status()}
    docker_nodes = _docker_nodes(rows)
    running = all(rows[name].state == "running" for name in [lab_config.DEPLOY_HOST, *docker_nodes] if name in rows)
    if len(docker_nodes) < count or not running or lab_config.DEPLOY_HOST not in rows or not paths().inventory.exists():
        others = len([name for name in rows if name.startswith("node")]) - len(docker_nodes)
        # Never fewer targets than the lab has: other users of the lab may need them.
        up(grown(max(count + others, len(rows) - 1)))
        rows = {row.name: row for row in status()}
        docker_nodes = _docker_nodes(rows)
        if len(docker_nodes) < count:
            # The lab was down: its saved layout's other nodes (podman) were not counted above.
            up(grown(len(rows) - 1 + count - len(docker_nodes)))
            rows = {row.name: row for row in status()}
            docker_nodes = _docker_nodes(rows)
    lab = paths()
    return Lab(
        inventory=lab.inventory,
        key=lab.key,
        known_hosts=lab.known_hosts,
        deploy_address=lab_config.node_ip(lab_config.DEPLOY_HOST),
        targets=tuple(
            Node(name, lab_config.node_ip(name)) for name in sorted(docker_nodes, key=lab_config.host_number)
        ),
    )


def inventory_for(lab: Lab, nodes: Iterable[Node], path: Path, registry: dict | None = None) -> Path:
    """The lab inventory cut down to ``nodes`` (what ``fab`` reads), with ``registry`` settings merged."""
    data = yaml.safe_load(lab.inventory.read_text())
    names = {node.name for node in nodes}
    data["targets"] = [host for host in data["targets"] if host["name"] in names]
    data["registry"] = {**(data.get("registry") or {}), **(registry or {})}
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def on_nodes(nodes: Iterable[Node], script: str) -> dict[str, str]:
    """Run ``script`` on every node at once with docker exec; its stdout per node."""
    nodes = list(nodes)

    def one(node: Node) -> str:
        result = docker("exec", node.name, "sh", "-c", script, check=False, timeout=300)
        if result.returncode != 0:
            raise RuntimeError(f"{node.name}: {script.splitlines()[0]!r}: {result.stderr.strip()}")
        return result.stdout

    with ThreadPoolExecutor(max_workers=max(1, len(nodes))) as pool:
        return dict(zip([node.name for node in nodes], pool.map(one, nodes)))


def prepare(nodes: Iterable[Node]) -> None:
    """sshd at LogLevel VERBOSE, so that each exec session shows in the log."""
    on_nodes(
        nodes,
        f"grep -qsx 'LogLevel VERBOSE' {SSHD_VERBOSE} && exit 0\n"
        f"echo 'LogLevel VERBOSE' > {SSHD_VERBOSE} && systemctl reload ssh",
    )


def reset(nodes: Iterable[Node], probe: str) -> None:
    """Targets as a fresh cloud has them: no daemon.json, nothing pending, no probe image; then quiet.

    docker.service allows three starts in 60 s: reset-failed clears that count.
    """
    nodes = tuple(nodes)
    on_nodes(
        nodes,
        "rm -rf /etc/docker/daemon.json /var/lib/kolla-registry/pending /etc/docker/certs.d\n"
        f"docker rmi -f {probe} >/dev/null 2>&1 || true\n"
        "systemctl reset-failed docker\n"
        "systemctl restart docker\n",
    )
    settle(nodes)


def settle(nodes: tuple[Node, ...]) -> None:
    """Wait until the nodes' CPU is quiet: a hundred dockerd restarting keep two CPUs busy for many
    seconds, which the next timed run would otherwise pay for."""
    time.sleep(SETTLE_SECONDS)
    cpu = NodeCpu(nodes)
    deadline = time.monotonic() + SETTLE_LIMIT
    before = cpu.seconds()
    while before is not None and time.monotonic() < deadline:
        time.sleep(SETTLE_WINDOW)
        after = cpu.seconds()
        if after - before < QUIET_CPUS * SETTLE_WINDOW:
            return
        before = after


def allow_restart(nodes: Iterable[Node]) -> None:
    on_nodes(nodes, "systemctl reset-failed docker")


def trusts(nodes: Iterable[Node], registry: str) -> list[str]:
    """The nodes whose running dockerd does NOT treat ``registry`` as insecure."""
    shown = on_nodes(
        nodes,
        "docker info --format '{{range $k,$v := .RegistryConfig.IndexConfigs}}{{$k}}={{$v.Secure}} {{end}}'",
    )
    return [name for name, text in shown.items() if f"{registry}=false" not in text.split()]


@dataclass(frozen=True)
class SshdCounts:
    """What one node's sshd logged since a moment: connections and exec sessions."""

    connections: int
    sessions: int


def sshd_counts(nodes: Iterable[Node], since: float) -> dict[str, SshdCounts]:
    """Per node: "Accepted publickey" lines (connections) and "Starting session" (exec channels)."""
    # Whole seconds for journalctl; the exact cut is made on each line's own timestamp. OpenSSH >= 9.8
    # (Debian 13) logs a connection's lines as sshd-session: with sshd alone its nodes counted 0.
    logs = on_nodes(nodes, f"journalctl -q -t sshd -t sshd-session -o short-unix --since @{int(since) - 1}")
    return {name: _count(text, since) for name, text in logs.items()}


def _count(log: str, since: float) -> SshdCounts:
    connections = sessions = 0
    for line in log.splitlines():
        stamp, _, message = line.partition(" ")
        try:
            if float(stamp) < since:
                continue
        except ValueError:
            continue
        connections += "Accepted publickey for " in message
        sessions += "Starting session: " in message
    return SshdCounts(connections, sessions)


class NodeCpu:
    """CPU time the target nodes' containers used (cgroup accounting), all processes together.

    Best effort: None where this machine's cgroup layout is not one of the known ones.
    """

    def __init__(self, nodes: Iterable[Node]) -> None:
        names = [node.name for node in nodes]
        # One inspect for all: a hundred of them one by one take seconds.
        ids = docker("inspect", "-f", "{{.Id}}", *names).stdout.split() if names else []
        self.counters = [_cpu_counter(container) for container in ids]

    def seconds(self) -> float | None:
        if not all(self.counters):
            return None
        return sum(_read_cpu(counter) for counter in self.counters)


def _cpu_counter(container: str) -> Path | None:
    candidates = (
        Path(f"/sys/fs/cgroup/cpuacct/docker/{container}/cpuacct.usage"),
        Path(f"/sys/fs/cgroup/docker/{container}/cpu.stat"),
        Path(f"/sys/fs/cgroup/system.slice/docker-{container}.scope/cpu.stat"),
    )
    return next((path for path in candidates if path.exists()), None)


def _read_cpu(counter: Path) -> float:
    text = counter.read_text()
    if counter.name == "cpuacct.usage":
        return int(text) / 1e9  # nanoseconds
    usage = next(line for line in text.splitlines() if line.startswith("usage_usec "))
    return int(usage.split()[1]) / 1e6


def ssh_command(lab: Lab, node: Node, command: str) -> list[str]:
    """Plain OpenSSH, no config files, strict host keys from the lab (the floor)."""
    return [
        tool("ssh"), "-F", "/dev/null", "-i", str(lab.key), "-o", "IdentitiesOnly=yes",
        "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes",
        "-o", f"UserKnownHostsFile={lab.known_hosts}", "-o", "ControlMaster=no",
        f"root@{node.address}", command,
    ]  # fmt: skip


def pulled(nodes: Iterable[Node], probe: str) -> list[str]:
    """The nodes that do NOT hold the probe image (a TLS registry is trusted through its CA, not listed)."""
    shown = on_nodes(nodes, f"docker image inspect -f ok {probe} 2>/dev/null || echo missing")
    return [name for name, text in shown.items() if text.strip() != "ok"]


def deploy_registry(lab: Lab, fab: Path, log: Path, inventory: Path | None = None) -> None:
    """deploy1's registry, as the e2e tests have it (a no-op when it is already there)."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("a") as out:
        result = subprocess.run(
            [str(fab), "deploy-host"],
            cwd=Path(__file__).resolve().parents[1],
            env={**os.environ, "KOLLA_REGISTRY_HOSTS": str(inventory or lab.inventory)},
            stdout=out,
            stderr=subprocess.STDOUT,
            check=False,
        )
    if result.returncode != 0:
        raise RuntimeError(f"fab deploy-host failed on the lab (log: {log})")
