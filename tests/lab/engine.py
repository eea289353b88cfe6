"""The lab's own Docker engine: a dockerd with its data, socket and log under the state root."""

import os
import shlex
import signal
import subprocess
import time
from pathlib import Path

from .config import paths
from .errors import LabError, LabUnavailable, say
from .host import tool

EXTRA_ARGS_ENV = "KOLLA_LAB_DOCKERD_ARGS"
TIMEOUT_ENV = "KOLLA_LAB_ENGINE_TIMEOUT"
# Variables that would send the docker CLI to some other engine.
FOREIGN_ENV = ("DOCKER_CONTEXT", "DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH", "DOCKER_CONFIG")


def docker_env() -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key not in FOREIGN_ENV}
    env["DOCKER_HOST"] = f"unix://{paths().socket}"
    return env


def docker(
    *args: str,
    check: bool = True,
    input: str | None = None,
    stdin: int | None = None,
    timeout: float | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run the docker CLI against the lab's engine; with check, a failure raises LabError."""
    result = subprocess.run(
        [tool("docker"), *args],
        env=docker_env(),
        input=input,
        stdin=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if check and result.returncode != 0:
        message = result.stderr.strip().splitlines()
        raise LabError(f"docker {' '.join(args[:2])} failed: {message[-1] if message else result.returncode}")
    return result


def engine_running() -> bool:
    if not paths().socket.exists():
        return False
    try:
        result = docker("version", "--format", "{{.Server.Version}}", check=False, timeout=15)
    except subprocess.TimeoutExpired:
        return False
    return result.returncode == 0


def ensure_engine() -> None:
    """Reuse the lab's dockerd if it answers, else start one that outlives this command."""
    if engine_running():
        return
    lab = paths()
    for directory in (lab.engine / "data", lab.engine / "exec"):
        directory.mkdir(parents=True, exist_ok=True)
    if not lab.daemon_json.exists():
        lab.daemon_json.write_text("{}\n")
    pid = _running_pid()
    if pid is None:
        say(f"starting the lab's Docker engine (log: {lab.engine_log})")
        pid = _spawn(_dockerd_command())
    else:
        say(f"waiting for the lab's Docker engine, pid {pid} (log: {lab.engine_log})")
    _wait_for(pid)


def stop_engine() -> None:
    pid = _running_pid()
    if pid is None:
        return
    say(f"stopping the lab's Docker engine (pid {pid})")
    _terminate(pid)


def _dockerd_command() -> list[str]:
    lab = paths()
    return [
        tool("dockerd"),
        "--data-root", str(lab.engine / "data"),
        "--exec-root", str(lab.engine / "exec"),
        "--pidfile", str(lab.pidfile),
        "--config-file", str(lab.daemon_json),
        "-H", f"unix://{lab.socket}",
        # No default bridge: it would fight a system dockerd over docker0. The lab uses its own.
        "--bridge", "none",
        *shlex.split(os.environ.get(EXTRA_ARGS_ENV, "")),
    ]  # fmt: skip


def _spawn(command: list[str]) -> int:
    """Start dockerd detached, through a shell that exits at once, so init reaps it."""
    log = paths().engine_log
    with log.open("a") as out:
        out.write(f"\n$ {shlex.join(command)}\n")
    script = 'log=$1; shift; "$@" </dev/null >>"$log" 2>&1 & echo $!'
    result = subprocess.run(
        ["sh", "-c", script, "sh", str(log), *command],
        capture_output=True,
        text=True,
        start_new_session=True,
        check=True,
    )
    return int(result.stdout.strip())


def _wait_for(pid: int) -> None:
    log = paths().engine_log
    timeout = float(os.environ.get(TIMEOUT_ENV, "60"))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if engine_running():
            return
        if not _alive(pid):
            raise LabUnavailable(f"the lab's Docker engine would not start: read {log} ({_last_line(log)})")
        time.sleep(0.5)
    _terminate(pid)
    raise LabUnavailable(
        f"the lab's Docker engine did not answer within {timeout:g}s, stopped it: read {log}"
    )


def _terminate(pid: int) -> None:
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 60
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    if _alive(pid):
        raise LabError(f"the lab's dockerd (pid {pid}) did not stop: kill {pid}")


def _running_pid() -> int | None:
    """The pid in the pidfile if that process is a live dockerd; else clear the stale file."""
    pidfile = paths().pidfile
    try:
        pid = int(pidfile.read_text().strip())
    except (OSError, ValueError):
        return None
    try:
        comm = Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        comm = ""
    if comm == "dockerd" and _alive(pid):
        return pid
    pidfile.unlink(missing_ok=True)
    return None


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def _last_line(log: Path) -> str:
    try:
        lines = [line.strip() for line in log.read_text(errors="replace").splitlines()]
    except OSError:
        return "no log"
    lines = [line for line in lines if line and not line.startswith("$ ")]
    return lines[-1][-200:] if lines else "empty log"
