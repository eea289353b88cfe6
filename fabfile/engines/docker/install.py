"""Host preparation, steps 1-3: the package index, the kernel, and Docker itself.

Each planner is pure (facts in, ``StepPlan`` out). The procedure's intent is
kept; its 2016 specifics are adapted to the host found.
"""

from __future__ import annotations

import shlex

from ...model.context import StepContext
from ...model.facts import HostFacts
from ...model.paths import APT_STAMP, STATE_DIR
from ...model.plan import RESTART, StepPlan
from . import config as dc
from .config import file_change
from .facts import dropins
from .paths import NAME

UBUNTU_TRUSTY_KERNEL = "linux-image-generic-lts-wily"


SHARED_RUN_UNIT = "/etc/systemd/system/kolla-registry-shared-run.service"


SHARED_RUN_TEXT = """[Unit]
Description=Mount /run as shared for Docker < 18.09 (kolla-registry)
Before=docker.service

[Service]
Type=oneshot
ExecStart=/bin/mount --make-shared /run

[Install]
WantedBy=multi-user.target
"""


APT_INSTALL = "apt-get install -y -q"


def update_packages(facts: HostFacts, ctx: StepContext) -> StepPlan:
    """Refresh the apt package index (step 1)."""
    plan = StepPlan("update-packages")
    if not _apt_based(facts):
        plan.error = f"unsupported OS: {facts.system.os_name} (needs apt: Debian or Ubuntu)"
        return plan
    valid = ctx.inventory.docker.apt_cache_valid_time
    if facts.system.apt_lists_age < valid:
        plan.notes.append(f"package index is {facts.system.apt_lists_age}s old (refreshed every {valid}s)")
    else:
        plan.commands += ["apt-get update -q", f"mkdir -p {STATE_DIR}", f"touch {APT_STAMP}"]
    return plan


def upgrade_kernel(facts: HostFacts, ctx: StepContext) -> StepPlan:
    """Install the LTS kernel on Ubuntu 14.04, else check the kernel suits Docker (step 2)."""
    plan = StepPlan("upgrade-kernel")
    running = dc.version(facts.system.kernel)
    if facts.system.os.get("ID") == "ubuntu" and facts.system.os.get("VERSION_ID") == "14.04":
        if UBUNTU_TRUSTY_KERNEL not in facts.system.packages:
            plan.commands.append(f"{APT_INSTALL} {UBUNTU_TRUSTY_KERNEL}")
        if running < (4, 2):
            plan.notes.append(f"running {facts.system.kernel}: reboot into the 4.2 LTS kernel (not rebooted)")
        return plan
    if running < (3, 10):
        plan.error = f"kernel {facts.system.kernel} is older than 3.10, the oldest Docker runs on"
    elif running < (4, 0):
        plan.notes.append(
            f"kernel {facts.system.kernel}: overlay2 needs 4.0 or newer; Docker will use another driver"
        )
    else:
        plan.notes.append(f"kernel {facts.system.kernel} supports overlay2")
    return plan


def install_docker(facts: HostFacts, ctx: StepContext) -> StepPlan:
    """Install the prerequisites and Docker, and fix MountFlags for its version (step 3)."""
    plan = StepPlan("install-docker")
    missing = [p for p in ctx.inventory.docker.prerequisites if p not in facts.system.packages]
    if missing:
        plan.commands.append(f"{APT_INSTALL} --no-install-recommends {shlex.join(missing)}")
    _plan_pip(facts, plan)
    if not facts.engine(NAME).version:
        plan.commands.append(_docker_install_command(ctx.inventory.docker.source))
        return plan
    installed = dc.version(facts.engine(NAME).version)
    if installed < dc.MIN_DOCKER:
        plan.error = f"Docker {facts.engine(NAME).version} is older than 1.10, which Kolla needs"
        return plan
    if facts.engine(NAME).service.get("ActiveState") != "active":
        plan.commands.append("systemctl enable docker && systemctl start docker")
    _plan_mount_flags(facts, installed, plan)
    plan.notes.append(f"Docker {facts.engine(NAME).version}")
    return plan


def _plan_pip(facts: HostFacts, plan: StepPlan) -> None:
    if facts.system.externally_managed:
        # PEP 668: pip must not touch the system Python; the OS owns it.
        plan.notes.append("system Python is externally managed (PEP 668): pip left to the OS")
    elif "python3-pip" in facts.system.packages and dc.version(facts.system.pip_version) < (20, 3):
        plan.commands.append("python3 -m pip install -U pip setuptools")


def _plan_mount_flags(facts: HostFacts, installed: tuple[int, ...], plan: StepPlan) -> None:
    if installed >= dc.MOUNTFLAGS_BREAKS_SINCE:
        for path in dc.mountflags_dropins(dropins(facts)):
            plan.files.append(file_change(facts, path, dc.without_mountflags(facts.files[path])))
            plan.notes.append(f"MountFlags=shared removed from {path}: it breaks Docker >= 18.09")
    else:
        if not dc.mountflags_dropins(dropins(facts)):
            plan.files.append(file_change(facts, dc.MOUNTFLAGS_DROPIN, dc.MOUNTFLAGS_TEXT))
        if facts.system.run_propagation != "shared":
            plan.files.append(file_change(facts, SHARED_RUN_UNIT, SHARED_RUN_TEXT))
            plan.commands.append(
                "mount --make-shared /run && systemctl daemon-reload && "
                "systemctl enable kolla-registry-shared-run.service"
            )
    if plan.files:
        plan.handler = RESTART


def _docker_install_command(source: str) -> str:
    if source == "get-docker":
        return "curl -fsSL https://get.docker.com | sh"
    return f"{APT_INSTALL} docker.io"


def _apt_based(facts: HostFacts) -> bool:
    family = {facts.system.os.get("ID", "")} | set(facts.system.os.get("ID_LIKE", "").split())
    return bool(family & {"debian", "ubuntu"})
