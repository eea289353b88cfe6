"""The benchmark's own venv: the tool plus ansible-core, pyinfra and matplotlib (the bench extra)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
VENV = PROJECT / "benchmarks" / ".venv"
STAMP = VENV / ".installed"


def python() -> Path:
    return VENV / "bin" / "python"


def ensure() -> Path:
    """Create or refresh benchmarks/.venv; return its python."""
    if not python().exists():
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    setup_cfg = PROJECT / "setup.cfg"
    if not STAMP.exists() or setup_cfg.stat().st_mtime > STAMP.stat().st_mtime:
        pip = [str(python()), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
        subprocess.run([*pip, "-e", f"{PROJECT}[bench]"], check=True)
        STAMP.touch()
    return python()


if __name__ == "__main__":
    print(ensure())
