"""The operating system's sections: release, kernel, addresses and names, packages, Python, /run."""

from __future__ import annotations

from ..model.paths import APT_STAMP
from .base import fact, version_word


def _os_release(text: str) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in text.splitlines() if "=" in line and not line.startswith("#"))
    return {key.strip(): value.strip().strip('"') for key, value in pairs}


def _installed(text: str) -> set[str]:
    return {line.split()[0] for line in text.splitlines() if line.endswith(" installed")}


OS = fact("os-release", "cat /etc/os-release 2>/dev/null", lambda f, t: setattr(f.system, "os", _os_release(t)))
KERNEL = fact("kernel", "uname -r", lambda f, t: setattr(f.system, "kernel", t.strip()))
ADDRESSES = fact("addresses", "hostname -I 2>/dev/null", lambda f, t: setattr(f.system, "addresses", t.split()))
NAMES = fact("names", "hostname 2>/dev/null; hostname -f 2>/dev/null", lambda f, t: setattr(f.system, "names", t.split()))
PEP668 = fact(
    "pep668",
    "python3 -c 'import os,sysconfig;print(os.path.exists(os.path.join("
    'sysconfig.get_path("stdlib"),"EXTERNALLY-MANAGED")))\' 2>/dev/null',
    lambda f, t: setattr(f.system, "externally_managed", t.strip() == "True"),
)
PIP = fact("pip", "python3 -m pip --version 2>/dev/null", lambda f, t: setattr(f.system, "pip_version", version_word(t)))
PACKAGES = fact(
    "packages",
    "dpkg-query -W -f '${Package} ${db:Status-Status}\\n' 2>/dev/null",
    lambda f, t: setattr(f.system, "packages", _installed(t)),
)
APT_AGE = fact(
    "apt-lists-age",
    f"t=$(stat -c %Y {APT_STAMP} /var/cache/apt/pkgcache.bin /var/lib/apt/lists 2>/dev/null "
    "| sort -n | tail -1); echo $(( $(date +%s) - ${t:-0} ))",
    lambda f, t: setattr(f.system, "apt_lists_age", int(t.strip() or 0)),
)
RUN_PROPAGATION = fact(
    "run-propagation",
    "findmnt -no PROPAGATION /run 2>/dev/null",
    lambda f, t: setattr(f.system, "run_propagation", t.strip()),
)
