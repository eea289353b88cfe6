"""The docker CLI as the writer and the collector use it, standing in on PATH for a host's Docker: each
container it runs is the real registry binary (Debian's docker-registry) on the local registry's storage.

``docker run -d --name NAME -e K=V ... IMAGE`` serves in the background with those variables (the
writer: REGISTRY_HTTP_NET=unix and its socket); ``docker run --rm ... --entrypoint /bin/registry IMAGE
garbage-collect [FLAGS] CONFIG`` collects in the foreground; ``docker rm -f NAME...`` stops them;
``docker volume inspect`` names the storage folder; with ``KR_DOCKER_FAIL_RUN`` set, every run fails with it. The registry's own config is the local registry's
(``KR_REGISTRY_CONFIG``): the container's ``-v`` and ``--env-file`` are what a host's Docker would mount.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from .registries import binary

SCRIPT = """#!{python}
import os, signal, subprocess, sys, time
from pathlib import Path
state = Path(os.environ["KR_DOCKER_STATE"])
config = os.environ["KR_REGISTRY_CONFIG"]
args = sys.argv[1:]
with open(state / "calls", "a") as log:
    log.write(" ".join(args) + "\\n")
def named():
    return args[args.index("--name") + 1]
def stop(name):
    pid = state / (name + ".pid")
    if pid.exists():
        try:
            os.kill(int(pid.read_text()), signal.SIGTERM)
            time.sleep(0.2)
        except (ProcessLookupError, ValueError):
            pass
        pid.unlink()
if args[:2] == ["rm", "-f"]:
    for name in args[2:]:
        stop(name)
elif args[:2] == ["volume", "inspect"]:
    print(os.environ["KR_STORAGE"])
elif args[0] == "run" and "garbage-collect" in args:
    tail = args[args.index("garbage-collect"):]
    sys.exit(subprocess.run([{binary!r}, *tail[:-1], config]).returncode)
elif args[0] == "run" and os.environ.get("KR_DOCKER_FAIL_RUN"):
    print("docker: Error response from daemon: " + os.environ["KR_DOCKER_FAIL_RUN"], file=sys.stderr)
    sys.exit(125)
elif args[0] == "run":
    env = dict(os.environ)
    for i, arg in enumerate(args):
        if arg == "-e":
            key, _, value = args[i + 1].partition("=")
            env[key] = value
    name = named()
    with open(state / (name + ".log"), "ab") as log:
        process = subprocess.Popen([{binary!r}, "serve", config], env=env, stdout=log, stderr=log, start_new_session=True)
    (state / (name + ".pid")).write_text(str(process.pid))
    print("0123456789ab")
else:
    print("docker stand-in: not handled: " + " ".join(args), file=sys.stderr)
    sys.exit(1)
"""


def install(folder: Path, registry_config: Path, storage: Path) -> dict[str, str]:
    """The stand-in in ``folder``; the environment the scripts need it with."""
    folder.mkdir(parents=True, exist_ok=True)
    docker = folder / "docker"
    docker.write_text(SCRIPT.format(python=sys.executable, binary=binary()))
    docker.chmod(0o755)
    return {
        "PATH": f"{folder}:{os.environ['PATH']}",
        "KR_DOCKER_STATE": str(folder),
        "KR_REGISTRY_CONFIG": str(registry_config),
        "KR_STORAGE": str(storage),
    }


def calls(folder: Path) -> list[str]:
    log = folder / "calls"
    return log.read_text().splitlines() if log.exists() else []
