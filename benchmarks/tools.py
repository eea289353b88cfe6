"""What is timed: the SSH floor, fab configure-targets, ansible-core and pyinfra.

Each tool turns into an ``Action``: the commands started together (one per node
for the floor, one for a tool), their environment, and what to clean up once the
clock has stopped. Every tool works on the same N nodes with N at once.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from .nodes import Lab, Node, inventory_for, ssh_command

HERE = Path(__file__).resolve().parent
PROJECT = HERE.parent
BIN = Path(sys.executable).parent

FLOOR_PHASES = {"true": "true", "reload": "systemctl reload docker", "restart": "systemctl restart docker"}


@dataclass
class Action:
    """Commands started at once and waited for; ``cleanup`` runs after the clock stops."""

    commands: list[list[str]]
    env: dict[str, str] = field(default_factory=lambda: dict(os.environ))
    cleanup: Callable[[], None] | None = None


class Floor:
    """One plain ``ssh HOST CMD`` per node, all at once."""

    def __init__(self, lab: Lab, nodes: tuple[Node, ...]) -> None:
        self.lab, self.nodes = lab, nodes

    def phase(self, name: str) -> Action:
        return Action([ssh_command(self.lab, node, FLOOR_PHASES[name]) for node in self.nodes])


class Fab:
    """``fab configure-targets`` with its default flags (its own default parallelism) on an inventory of the N nodes."""

    name = "fab configure-targets"
    registry: ClassVar[dict] = {}

    def __init__(self, lab: Lab, nodes: tuple[Node, ...], work: Path) -> None:
        self.count = len(nodes)
        self.inventory = inventory_for(lab, nodes, work / f"{self.name.split()[-1]}.yaml", self.registry)

    def action(self) -> Action:
        env = {**os.environ, "KOLLA_REGISTRY_HOSTS": str(self.inventory)}
        return Action([[str(BIN / "fab"), "configure-targets"]], env)


class FabTls(Fab):
    """The same on a TLS registry with a login: the CA goes to certs.d, no reload."""

    name = "fab configure-targets (TLS)"
    registry: ClassVar[dict] = {"tls": "self-signed", "auth": "htpasswd"}


class Ansible:
    """ansible-playbook with forks = N, pipelining and ControlPersist (kolla-ansible's settings)."""

    name = "ansible-core"

    def __init__(self, lab: Lab, nodes: tuple[Node, ...], work: Path) -> None:
        self.count = len(nodes)
        self.work = work
        self.inventory = work / "ansible-inventory.ini"
        self.inventory.write_text(_ansible_inventory(lab, nodes))
        self.config = work / "ansible.cfg"
        self.config.write_text(_ansible_config(lab, self.count))

    def action(self) -> Action:
        # A fresh ControlPath directory per run: no run reuses another's master connections.
        control = Path(tempfile.mkdtemp(prefix="kb-cp-"))
        env = {
            **os.environ,
            "ANSIBLE_CONFIG": str(self.config),
            "ANSIBLE_HOME": str(self.work / "ansible-home"),
            "ANSIBLE_SSH_CONTROL_PATH_DIR": str(control),
            "LC_ALL": "C.UTF-8",
        }
        command = [
            str(BIN / "ansible-playbook"), "-i", str(self.inventory), "-f", str(self.count),
            str(HERE / "ansible" / "playbook.yml"),
        ]  # fmt: skip
        return Action([command], env, cleanup=lambda: _close_masters(control))


class Pyinfra:
    """pyinfra with --parallel N."""

    name = "pyinfra"

    def __init__(self, lab: Lab, nodes: tuple[Node, ...], work: Path) -> None:
        self.count = len(nodes)
        self.inventory = work / "pyinfra_inventory.py"
        self.inventory.write_text(_pyinfra_inventory(lab, nodes))

    def action(self) -> Action:
        command = [
            str(BIN / "pyinfra"), "-y", "--parallel", str(self.count),
            str(self.inventory), str(HERE / "pyinfra_deploy.py"),
        ]  # fmt: skip
        return Action([command], {**os.environ, "PYINFRA_PROGRESS": "off"})


def versions() -> dict[str, str]:
    """The measured tools' versions, for the record."""
    from importlib.metadata import version

    names = ("fabric", "paramiko", "invoke", "ansible-core", "pyinfra")
    found = {name: version(name) for name in names}
    ssh = subprocess.run(["ssh", "-V"], capture_output=True, text=True, check=False)
    found["openssh"] = ssh.stderr.strip()
    found["python"] = sys.version.split()[0]
    return found


def _ansible_inventory(lab: Lab, nodes: tuple[Node, ...]) -> str:
    hosts = "".join(f"{node.name} ansible_host={node.address}\n" for node in nodes)
    return (
        f"[targets]\n{hosts}\n[targets:vars]\n"
        f"ansible_user=root\nansible_ssh_private_key_file={lab.key}\n"
        f"registry={lab.registry}\nprobe={lab.probe}\n"
    )


def _ansible_config(lab: Lab, forks: int) -> str:
    ssh_args = (
        "-C -o ControlMaster=auto -o ControlPersist=60s -F /dev/null -o IdentitiesOnly=yes "
        f"-o StrictHostKeyChecking=yes -o UserKnownHostsFile={lab.known_hosts}"
    )
    return (
        "[defaults]\n"
        f"forks = {forks}\n"
        "host_key_checking = True\n"
        "interpreter_python = /usr/bin/python3\n"
        "retry_files_enabled = False\n"
        "[ssh_connection]\n"
        "pipelining = True\n"
        f"ssh_args = {ssh_args}\n"
    )


def _pyinfra_inventory(lab: Lab, nodes: tuple[Node, ...]) -> str:
    data = {
        "ssh_user": "root",
        "ssh_key": str(lab.key),
        "ssh_known_hosts_file": str(lab.known_hosts),
        "ssh_strict_host_key_checking": "yes",
        "ssh_allow_agent": False,
        "ssh_look_for_keys": False,
        "ssh_config_file": os.devnull,
        "registry": lab.registry,
        "probe": lab.probe,
    }
    hosts = [(node.address, data) for node in nodes]
    return f"targets = {hosts!r}\n"


def _close_masters(control: Path) -> None:
    """Stop the ControlPersist masters ansible left behind (their CPU is then counted)."""
    for socket in control.iterdir():
        subprocess.run(
            ["ssh", "-F", "/dev/null", "-o", f"ControlPath={socket}", "-O", "exit", "kolla-bench"],
            capture_output=True,
            check=False,
        )
    for leftover in control.iterdir():
        leftover.unlink(missing_ok=True)
    control.rmdir()
