"""The engine on this machine as its host: scripts run under sh here, no SSH.

Integration tests run real actions (their facts sections, planners and jobs)
between real registries on loopback through the real engine; only the
transport is replaced.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

from fabfile.engine.access import RegistryAccess
from fabfile.engine.action import Action
from fabfile.engine.hostrun import HostRun
from fabfile.engine.report import Result
from fabfile.engine.runner import Runner
from fabfile.model.context import Modes, StepContext
from fabfile.model.errors import RemoteError
from fabfile.model.inventory import Host, Inventory, RegistrySettings
from fabfile.transport.upload import write_folder_tar

HOST = Host("deploy1", "127.0.0.1")


class NoConnection:
    """What the engine asks of a connection, for a host that is this machine."""

    def open(self) -> None:
        return None

    def close(self) -> None:
        return None


class LocalRun(HostRun):
    """A host run whose host is this machine; every script it ran is kept."""

    def __init__(self, host: Host, ctx: StepContext, config=None) -> None:
        self.scripts: list[str] = []
        super().__init__(host, ctx, config)
        self.connection = NoConnection()

    def run(self, script: str, on_line=None, timeout: int = 0) -> str:
        self.scripts.append(script)
        process = subprocess.Popen(["sh", "-c", script], stdout=subprocess.PIPE, text=True)
        lines = []
        for line in process.stdout:
            lines.append(line)
            if on_line:
                on_line(line.rstrip("\n"))
        if process.wait(timeout or 300):
            raise RemoteError(f"exit {process.returncode}: {''.join(lines)[-300:]}", process.returncode)
        return "".join(lines)

    def upload(self, local: str, name: str, callback=None) -> str:
        if not self.uploads:
            self.uploads = tempfile.mkdtemp(prefix="kolla-registry.")
        remote = Path(self.uploads) / name
        if Path(local).is_dir():
            with remote.open("wb") as out:
                write_folder_tar(local, out)
        else:
            shutil.copyfile(local, remote)
        return str(remote)

    def sibling(self) -> LocalRun:
        return LocalRun(self.host, self.ctx, self.config)

    def close(self) -> None:
        if self.uploads:
            shutil.rmtree(self.uploads, ignore_errors=True)


def local_inventory(port: int) -> Inventory:
    """An inventory whose registry is the one on loopback at ``port``."""
    return Inventory(Path("hosts.yaml"), HOST, (), RegistrySettings(port=port, address="127.0.0.1"))


def run_locally(action: Action, port: int, modes: Modes | None = None) -> tuple[Result, list[LocalRun]]:
    """``action`` on this machine as the deployment host; the result and the host runs."""
    inventory = local_inventory(port)
    runner = Runner(action, StepContext(inventory, modes=modes or Modes()), RegistryAccess(inventory))
    runs: list[LocalRun] = []

    def made(host: Host, ctx: StepContext, config=None) -> LocalRun:
        runs.append(LocalRun(host, ctx, config))
        return runs[-1]

    runner.run_class = made
    return runner.run([HOST], 1), runs
