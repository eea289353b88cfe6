"""A kolla-ansible virtualenv for the tests: pyenv's Python 3.12 (or 3.13), pinned releases.

kolla-ansible 23 needs Python >= 3.12 and this project runs on 3.11, so it lives in its own
virtualenv under the lab's root, built once and reused while its stamp names the same pins.
"""

from __future__ import annotations

import fcntl
import glob
import os
import re
import shutil
import subprocess
from pathlib import Path

from tests.lab.config import DEFAULT_ROOT, ROOT_ENV

# PyPI's `ansible` 14 carries the collections kolla-ansible's requirements-core.yml asks for.
PINS = ("kolla-ansible==23.0.0", "ansible==14.5.0")
PYTHONS = ("/root/.pyenv/versions/3.12.*/bin/python3", "/root/.pyenv/versions/3.13.*/bin/python3")
STAMP = ".kolla-registry-pins"


class KollaEnvUnavailable(Exception):
    """The virtualenv cannot be built here, and why."""


def kolla_venv() -> Path:
    """The virtualenv with the pinned kolla-ansible, built when missing or pinned otherwise."""
    venv = Path(os.environ.get(ROOT_ENV, DEFAULT_ROOT)) / "kolla-ansible-venv"  # beside the lab's state
    if stamp_matches(venv):
        return venv
    venv.parent.mkdir(parents=True, exist_ok=True)
    with open(venv.parent / ".kolla-ansible-venv.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another test process may be building it
        if not stamp_matches(venv):
            build(venv)
    return venv


def stamp_matches(venv: Path) -> bool:
    stamp = venv / STAMP
    return stamp.is_file() and stamp.read_text().split() == list(PINS) and (venv / "bin" / "kolla-ansible").exists()


def build(venv: Path) -> None:
    python = base_python()
    shutil.rmtree(venv, ignore_errors=True)
    run([python, "-m", "venv", str(venv)], "creating the virtualenv")
    run([str(venv / "bin" / "pip"), "install", "-q", *PINS], "pip install " + " ".join(PINS))
    (venv / STAMP).write_text("\n".join(PINS) + "\n")


def base_python() -> str:
    for pattern in PYTHONS:
        found = sorted(glob.glob(pattern))
        if found:
            return found[-1]
    raise KollaEnvUnavailable("no Python 3.12 or 3.13 under /root/.pyenv/versions (kolla-ansible 23 needs one)")


def run(command: list[str], what: str) -> None:
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=1200, check=False)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise KollaEnvUnavailable(f"{what} failed: {error}") from None
    if done.returncode != 0:
        said = [line for line in (done.stderr or done.stdout).splitlines() if line.strip()]
        raise KollaEnvUnavailable(f"{what} failed: {said[-1] if said else f'exit {done.returncode}'}")


def share(venv: Path) -> Path:
    """kolla-ansible's playbooks, inventories and defaults in the virtualenv."""
    return venv / "share" / "kolla-ansible" / "ansible"


def sample_children(venv: Path) -> str:
    """The sample multinode inventory's ``[GROUP:children]`` sections, as they are."""
    sample = (share(venv) / "inventory" / "multinode").read_text()
    return sample[re.search(r"^\[[^\]]+:children\]", sample, re.MULTILINE).start():]
