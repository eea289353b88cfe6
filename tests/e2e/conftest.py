"""Fixtures for end-to-end tests: the real ``fab`` CLI and SSH to lab hosts."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from fabfile import inventory as inv
from fabfile.transport.connection import connect

PROJECT = Path(__file__).resolve().parents[2]
FAB = Path(sys.executable).with_name("fab")


@dataclass
class FabResult:
    code: int
    output: str


class Fab:
    """Runs the real ``fab`` command against an inventory."""

    def __init__(self, inventory: Path) -> None:
        self.inventory = inventory

    def __call__(self, *args: str, inventory: Path | None = None, timeout: int = 900) -> FabResult:
        env = {**os.environ, inv.ENV_VAR: str(inventory or self.inventory)}
        done = subprocess.run(
            [str(FAB), *args],
            check=False,
            cwd=PROJECT,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        output = done.stdout + done.stderr
        print(output)
        return FabResult(done.returncode, output)


class Hosts:
    """Commands on lab hosts over real SSH, as the inventory describes them."""

    def __init__(self, inventory: Path) -> None:
        self.inventory = inv.load(inventory)

    def host(self, name: str) -> inv.Host:
        return self.inventory.resolve(name)

    def run(self, name: str, command: str, check: bool = True) -> str:
        connection = connect(self.host(name))
        try:
            result = connection.run(command, hide=True, warn=not check, in_stream=False)
        finally:
            connection.close()
        return result.stdout.strip()

    def write(self, name: str, path: str, text: str) -> None:
        """Put ``text`` in ``path`` on a host, whatever quotes it holds."""
        encoded = base64.b64encode(text.encode()).decode()
        self.run(name, f"mkdir -p {os.path.dirname(path)} && echo {encoded} | base64 -d > {path}")

    def docker_pid(self, name: str) -> str:
        return self.run(name, "systemctl show -p MainPID --value docker")

    def start_workload(self, name: str) -> None:
        """A long-lived container made from the node's own /bin/sleep (no registry needed)."""
        self.run(
            name,
            "docker rm -f workload >/dev/null 2>&1; docker image inspect workload >/dev/null 2>&1 || "
            "tar -ch /bin/sleep $(ldd /bin/sleep | grep -o '/[^ ]*') 2>/dev/null | docker import - workload "
            "&& docker run -d --name workload workload /bin/sleep infinity",
        )

    def containers(self, name: str) -> str:
        return self.run(
            name, "docker ps -q --no-trunc | xargs -r docker inspect -f '{{.Id}} {{.State.StartedAt}}'"
        )


@pytest.fixture(scope="session")
def fab(lab) -> Fab:
    return Fab(Path(lab.inventory))


@pytest.fixture(scope="session")
def hosts(lab) -> Hosts:
    return Hosts(Path(lab.inventory))


def registry_of(hosts: Hosts) -> str:
    """The registry's ADDR:PORT, as targets name it."""
    return f"{hosts.inventory.deploy_host.address}:{hosts.inventory.registry.port}"


def trusted(hosts: Hosts, name: str, registry: str) -> bool:
    """Whether the node's running dockerd (not just its files), or its podman, treats ``registry`` as insecure."""
    if engine_of(hosts, name) == "podman":
        registries = json.loads(hosts.run(name, "podman info --format '{{json .Registries}}'"))
        return bool((registries.get(registry) or {}).get("Insecure"))
    shown = hosts.run(
        name,
        "docker info --format '{{range $k,$v := .RegistryConfig.IndexConfigs}}{{$k}}={{$v.Secure}} {{end}}'",
    )
    return f"{registry}=false" in shown.split()


def engine_of(hosts: Hosts, name: str) -> str:
    """docker, or podman on a node without Docker."""
    return "docker" if hosts.run(name, "command -v dockerd || true") else "podman"


def holds_image(hosts: Hosts, name: str, ref: str) -> bool:
    """Whether the node's engine has ``ref`` in its store."""
    engine = engine_of(hosts, name)
    return hosts.run(name, f"{engine} image inspect {ref} >/dev/null 2>&1 && echo yes || echo no") == "yes"


def podman_registries(hosts: Hosts, name: str) -> list[str]:
    """The registries the tool's podman drop-in lists on the node."""
    text = hosts.run(name, f"cat {PODMAN_DROPIN} 2>/dev/null || true")
    return [line.split('"')[1] for line in text.splitlines() if line.startswith("location = ")]


def changed_steps(output: str) -> list[str]:
    """The ``host | step | CHANGED | ...`` progress lines of a run."""
    return [line for line in output.splitlines() if " | CHANGED | " in line]


@pytest.fixture
def deployed(fab) -> FabResult:
    """A deployment host with its registry (a quick no-op when already deployed).

    Per test, because other tests may reset deploy1 to a fresh host.
    """
    return ensure_deployed(fab)


def ensure_deployed(fab: Fab) -> FabResult:
    result = fab("deploy-host")
    assert result.code == 0, result.output
    return result


def inventory_variant(base: Path, folder: Path, targets=None, edit=None, **sections) -> Path:
    """A copy of the lab inventory: some targets only, sections merged, or ``edit(data)``."""
    data = yaml.safe_load(base.read_text())
    if targets is not None:
        data["targets"] = [host for host in data["targets"] if host["name"] in targets]
    for key, change in sections.items():
        data[key] = {**data.get(key, {}), **change}
    if edit:
        edit(data)
    path = folder / "hosts.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


PODMAN_DROPIN = "/etc/containers/registries.conf.d/50-kolla-registry.conf"
# The registry name's line (registry.hostname) out of /etc/hosts, in place: a lab host's
# /etc/hosts is a bind mount, which sed -i (a rename) cannot replace.
UNMARK_HOSTS = "grep -v '# kolla-registry$' /etc/hosts > /etc/hosts.unmarked; cat /etc/hosts.unmarked > /etc/hosts; rm -f /etc/hosts.unmarked"


def reset_targets(hosts: Hosts, names) -> None:
    """Targets as a fresh node has them: no daemon.json, podman drop-in or registry name line, nothing pending,
    Docker running."""
    for name in names:
        hosts.run(
            name,
            f"{UNMARK_HOSTS}; rm -rf /etc/docker/daemon.json /var/lib/kolla-registry/pending {PODMAN_DROPIN} "
            "/etc/containers/certs.d; if command -v podman >/dev/null; then podman rmi -a -f >/dev/null 2>&1; fi; "
            "if command -v dockerd >/dev/null; then systemctl reset-failed docker; systemctl restart docker; fi",
        )
