"""The machine that runs the lab: root, the tools it needs, kernel limits, commands."""

import os
import shutil
import subprocess
from pathlib import Path

from .errors import LabError, LabUnavailable, say

PACKAGES = ["docker.io", "docker-registry", "debootstrap", "openssh-client", "iptables"]
TOOLS = ["dockerd", "docker", "docker-registry", "debootstrap", "ssh-keygen", "ssh", "iptables"]
SBIN = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# systemd in every node takes inotify instances (about 6 each, more once logins start user managers);
# the default 128 runs out at about 20 nodes, 1024 near 150.
INOTIFY = {"max_user_instances": 8192, "max_user_watches": 1048576}


def require_root() -> None:
    if os.geteuid() != 0:
        raise LabUnavailable(
            "the lab needs root (it runs its own Docker engine and debootstrap): "
            "run it as root, e.g. sudo .venv/bin/python -m tests.lab up"
        )


def which(tool: str) -> str | None:
    """Like shutil.which, but also looks in the sbin directories a user's PATH may lack."""
    return shutil.which(tool, path=f"{os.environ.get('PATH', '')}:{SBIN}")


def tool(name: str) -> str:
    found = which(name)
    if found is None:
        raise LabUnavailable(f"{name} is missing: apt-get install {' '.join(PACKAGES)}")
    return found


def ensure_tools() -> None:
    """Install Debian's docker.io, docker-registry, debootstrap... when any is missing."""
    missing = [name for name in TOOLS if which(name) is None]
    if not missing:
        return
    say(f"installing {' '.join(PACKAGES)} with apt-get (missing: {', '.join(missing)})")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    # A broken third-party source must not stop the install from Debian's mirror.
    subprocess.run(["apt-get", "update"], env=env, stdout=subprocess.DEVNULL, check=False)
    install = ["apt-get", "install", "-y", "--no-install-recommends", *PACKAGES]
    if subprocess.run(install, env=env, stdout=subprocess.DEVNULL, check=False).returncode != 0:
        raise LabUnavailable(f"could not install the lab's tools: run {' '.join(install)}")
    still = [name for name in TOOLS if which(name) is None]
    if still:
        raise LabUnavailable(f"{', '.join(still)} still missing after apt-get install")


def raise_inotify_limits() -> None:
    for key, wanted in INOTIFY.items():
        knob = Path("/proc/sys/fs/inotify") / key
        try:
            if int(knob.read_text()) < wanted:
                knob.write_text(f"{wanted}\n")
        except OSError as error:
            say(f"warning: cannot raise fs.inotify.{key} to {wanted} ({error}); big labs may fail")


def run(
    args: list[str],
    *,
    log: Path | None = None,
    stdin: int | None = None,
    input: str | None = None,
    timeout: float | None = None,
    what: str | None = None,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run a command; on failure raise LabError naming it, its log, and its last words."""
    if log is not None:
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("a") as out:
            out.write(f"\n$ {' '.join(args)}\n")
            out.flush()
            result = subprocess.run(
                args,
                stdin=stdin,
                stdout=out,
                stderr=subprocess.STDOUT,
                text=True,
                timeout=timeout,
                env=env,
                check=False,
            )
        output = log.read_text(errors="replace")
    else:
        result = subprocess.run(
            args,
            stdin=stdin,
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
            env=env,
            check=False,
        )
        output = result.stderr or result.stdout or ""
    if result.returncode != 0:
        lines = [line for line in output.splitlines() if line.strip()]
        last = lines[-1].strip() if lines else f"exit status {result.returncode}"
        where = f" (log: {log})" if log else ""
        raise LabError(f"{what or ' '.join(args[:3])} failed{where}: {last}")
    return result
