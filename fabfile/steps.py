"""The documented steps as planners: host facts in, a ``StepPlan`` out.

Each planner is pure, so what a step would do to any host is tested without
SSH. The procedure's intent is kept; its 2016 specifics are adapted to the
host found (see the comments on each rule).
"""

from __future__ import annotations

import hashlib
import json
import shlex
from dataclasses import dataclass

from . import dockerconfig as dc
from .change import RELOAD, RESTART, FileChange, StepPlan, handler_script
from .facts import APT_STAMP, DAEMON_JSON, DEFAULT_DOCKER, MARK, PENDING, STATE_DIR, HostFacts
from .inventory import Inventory, RegistrySettings

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
ARCHIVE_ON_HOST = "/tmp/kolla-registry-image.tar"
PROBE_REPOSITORY = "kolla-registry/probe"
APT_INSTALL = "apt-get install -y -q"


@dataclass(frozen=True)
class StepContext:
    """What a planner needs besides the host's facts."""

    inventory: Inventory
    registry_address: str = ""
    repair: bool = False
    notified: str | None = None

    @property
    def registry(self) -> str:
        return f"{self.registry_address}:{self.inventory.registry.port}"

    @property
    def probe_image(self) -> str:
        return f"{self.registry}/{PROBE_REPOSITORY}:latest"


def update_packages(facts: HostFacts, ctx: StepContext) -> StepPlan:
    """Refresh the apt package index (step 1)."""
    plan = StepPlan("update-packages")
    if not _apt_based(facts):
        plan.error = f"unsupported OS: {facts.os_name} (needs apt: Debian or Ubuntu)"
        return plan
    valid = ctx.inventory.docker.apt_cache_valid_time
    if facts.apt_lists_age < valid:
        plan.notes.append(f"package index is {facts.apt_lists_age}s old (refreshed every {valid}s)")
    else:
        plan.commands += ["apt-get update -q", f"mkdir -p {STATE_DIR}", f"touch {APT_STAMP}"]
    return plan


def upgrade_kernel(facts: HostFacts, ctx: StepContext) -> StepPlan:
    """Install the LTS kernel on Ubuntu 14.04, else check the kernel suits Docker (step 2)."""
    plan = StepPlan("upgrade-kernel")
    running = dc.version(facts.kernel)
    if facts.os.get("ID") == "ubuntu" and facts.os.get("VERSION_ID") == "14.04":
        if UBUNTU_TRUSTY_KERNEL not in facts.packages:
            plan.commands.append(f"{APT_INSTALL} {UBUNTU_TRUSTY_KERNEL}")
        if running < (4, 2):
            plan.notes.append(f"running {facts.kernel}: reboot into the 4.2 LTS kernel (not rebooted)")
        return plan
    if running < (3, 10):
        plan.error = f"kernel {facts.kernel} is older than 3.10, the oldest Docker runs on"
    elif running < (4, 0):
        plan.notes.append(
            f"kernel {facts.kernel}: overlay2 needs 4.0 or newer; Docker will use another driver"
        )
    else:
        plan.notes.append(f"kernel {facts.kernel} supports overlay2")
    return plan


def install_docker(facts: HostFacts, ctx: StepContext) -> StepPlan:
    """Install the prerequisites and Docker, and fix MountFlags for its version (step 3)."""
    plan = StepPlan("install-docker")
    missing = [p for p in ctx.inventory.docker.prerequisites if p not in facts.packages]
    if missing:
        plan.commands.append(f"{APT_INSTALL} --no-install-recommends {' '.join(missing)}")
    _plan_pip(facts, plan)
    if not facts.docker_version:
        plan.commands.append(_docker_install_command(ctx.inventory.docker.source))
        return plan
    installed = dc.version(facts.docker_version)
    if installed < dc.MIN_DOCKER:
        plan.error = f"Docker {facts.docker_version} is older than 1.10, which Kolla needs"
        return plan
    if facts.unit.get("ActiveState") != "active":
        plan.commands.append("systemctl enable docker && systemctl start docker")
    _plan_mount_flags(facts, installed, plan)
    plan.notes.append(f"Docker {facts.docker_version}")
    return plan


def create_registry(facts: HostFacts, ctx: StepContext) -> StepPlan:
    """Run the registry:2 container with a named volume (step 4)."""
    plan = StepPlan("create-registry")
    settings = ctx.inventory.registry
    if not facts.docker_answers:
        plan.error = "Docker is not running here: run install-docker first"
        return plan
    if not facts.image_id:
        _plan_image(ctx, plan)
        return plan
    daemon = _daemon_json_or_error(facts, plan)
    if daemon is None:
        return plan
    host_network = settings.network == "host" or (
        settings.network == "auto" and dc.bridge_or_iptables_off(daemon, _flags(facts))
    )
    spec = registry_spec(ctx, host_network, facts.image_id)
    current = facts.container
    labels = (current or {}).get("Config", {}).get("Labels") or {}
    if current and labels.get(SPEC_LABEL) == spec:
        if not current.get("State", {}).get("Running"):
            plan.commands.append(f"docker start {shlex.quote(settings.name)}")
        else:
            plan.notes.append(f"{settings.name} runs {settings.image} on port {settings.port}")
        return plan
    if current:
        plan.commands.append(f"docker rm -f {shlex.quote(settings.name)}")
        plan.commands += _carry_data(current, settings.volume)
    plan.commands.append(registry_run_command(ctx, host_network, spec))
    return plan


def trust_registry(facts: HostFacts, ctx: StepContext) -> StepPlan:
    """Make Docker trust the registry: daemon.json or DOCKER_OPTS, never both (step 5)."""
    plan = StepPlan("trust-registry")
    if not ctx.registry_address:
        plan.error = "no registry address: the deployment host has none, set registry.address"
        return plan
    daemon = _daemon_json_or_error(facts, plan)
    if daemon is None:
        return plan
    flags = _flags(facts)
    if trust_method(facts, ctx) == "docker-opts":
        _trust_with_docker_opts(facts, ctx, daemon, plan)
    else:
        _trust_with_daemon_json(facts, ctx, dc.flag_registries(flags), plan)
    return plan


def copy_docker_unit(facts: HostFacts, ctx: StepContext) -> StepPlan:
    """Make docker.service read /etc/default/docker, when DOCKER_OPTS is used (step 6)."""
    plan = StepPlan("copy-docker-unit")
    if trust_method(facts, ctx) != "docker-opts":
        plan.notes.append("not needed: the registry is trusted through daemon.json")
    elif DEFAULT_DOCKER in facts.unit.get("EnvironmentFiles", "") or dc.ENV_DROPIN in facts.dropins:
        plan.notes.append(f"not needed: docker.service already reads {DEFAULT_DOCKER}")
    else:
        # A drop-in instead of a copied unit: package upgrades keep fixing the unit.
        plan.files.append(_file(facts, dc.ENV_DROPIN, dc.ENV_TEXT))
        plan.handler = RESTART
    return plan


def add_docker_opts(facts: HostFacts, ctx: StepContext) -> StepPlan:
    """Make dockerd's ExecStart pass $DOCKER_OPTS, when DOCKER_OPTS is used (step 7)."""
    plan = StepPlan("add-docker-opts")
    argv = dc.exec_start_argv(facts.unit.get("ExecStart", ""))
    if trust_method(facts, ctx) != "docker-opts":
        plan.notes.append("not needed: the registry is trusted through daemon.json")
    elif "$DOCKER_OPTS" in argv or "${DOCKER_OPTS}" in argv:
        plan.notes.append("not needed: dockerd's ExecStart already passes $DOCKER_OPTS")
    else:
        text = dc.exec_dropin_text(argv, dc.version(facts.docker_version))
        if facts.dropins.get(dc.EXEC_DROPIN) == text:
            # systemd shows the new ExecStart only after restart-docker reloads it.
            plan.notes.append(f"{dc.EXEC_DROPIN} in place; applies when Docker restarts")
        else:
            plan.files.append(_file(facts, dc.EXEC_DROPIN, text))
            plan.handler = RESTART
    return plan


def restart_docker(facts: HostFacts, ctx: StepContext) -> StepPlan:
    """Reload or restart Docker only if earlier steps changed its config (step 8)."""
    plan = StepPlan("restart-docker")
    pending = facts.files.get(PENDING, "").strip()
    if pending:
        configured = facts.files.get(DAEMON_JSON, "") + facts.files.get(DEFAULT_DOCKER, "")
        expect = ctx.registry if ctx.registry_address and ctx.registry in configured else None
        plan.commands.append(handler_script(expect_insecure=expect))
        plan.notes.append(
            "Docker " + (RESTART if RESTART in pending or "/etc/systemd/" in pending else RELOAD)
        )
    elif ctx.notified:
        plan.notes.append(f"Docker would {ctx.notified} after the changes above")
    else:
        pid = facts.unit.get("MainPID", "?")
        plan.notes.append(f"nothing changed: Docker left running (pid {pid})")
    return plan


def verify_script(ctx: StepContext, push: bool) -> str:
    """Shell that checks the registry answers, and a probe image round-trips.

    ``push`` is for the deployment host: it also checks the container and its
    volume, and pushes the probe before pulling it back; targets only pull.
    """
    url = f"http://{ctx.registry}/v2/"
    probe = shlex.quote(ctx.probe_image)
    lines = [
        "set -e",
        f'fail() {{ echo "{MARK} fail $*"; exit 1; }}',
        (
            'headers() { curl -sS -m 10 -D - -o /dev/null "$1" 2>&1 || python3 -c '
            "'import sys,urllib.request as u; print(u.urlopen(sys.argv[1], timeout=10).headers)' \"$1\" 2>&1; }"
        ),
        *(_container_checks(ctx.inventory.registry) if push else []),
        (
            f"headers {url} | grep -qi '^Docker-Distribution-Api-Version: *registry/2.0' "
            f"|| fail GET {url} did not answer as a registry: $(headers {url} | head -1)"
        ),
        *(_probe_push(ctx.probe_image) if push else []),
        (
            f"docker pull {probe} >/dev/null 2>&1 || fail docker pull {ctx.probe_image}: "
            f"$(docker pull {probe} 2>&1 | tail -1)"
        ),
        f"echo '{MARK} pulled {ctx.probe_image}'",
    ]
    return "\n".join(lines) + "\n"


def _container_checks(settings: RegistrySettings) -> list[str]:
    name = shlex.quote(settings.name)
    storage = '{{range .Mounts}}{{if eq .Destination "/var/lib/registry"}}{{.Name}} {{.Source}}{{end}}{{end}}'
    return [
        f"state=$(docker inspect -f '{{{{.State.Status}}}}' {name} 2>/dev/null) || fail no container {name}",
        f'[ "$state" = running ] || fail container {name} is "$state"',
        (
            f"docker ps -a --filter name=^/{settings.name}$ "
            f"--format '{MARK} container {{{{.Names}}}} {{{{.Image}}}} {{{{.Status}}}}'"
        ),
        f"set -- $(docker inspect -f '{storage}' {name})",
        # The space left is what decides whether the next push fits.
        (
            'space="volume ${1:-none}: $(df -h --output=avail "${2:-/}" | tail -1 | tr -d " ") free'
            ' of $(df -h --output=size "${2:-/}" | tail -1 | tr -d " ")"'
        ),
        f'echo "{MARK} $space"',
    ]


def _probe_push(image: str) -> list[str]:
    probe = shlex.quote(image)
    return [
        f"if ! docker image inspect {probe} >/dev/null 2>&1; then",
        '  d=$(mktemp -d); echo kolla-registry probe > "$d/probe"',
        f'  tar -C "$d" -c probe | docker import -m "kolla-registry probe" - {probe} >/dev/null; rm -rf "$d"',
        "fi",
        (
            f"docker push {probe} >/dev/null 2>&1 || fail docker push {image}: "
            f'$(docker push {probe} 2>&1 | tail -1) "($space)"'
        ),
        f"docker rmi {probe} >/dev/null",
    ]


SPEC_LABEL = "kolla-registry.spec"


def registry_spec(ctx: StepContext, host_network: bool, image_id: str) -> str:
    """A short hash of every setting the registry container is created with."""
    settings = ctx.inventory.registry
    spec = {
        "image": settings.image,
        "image_id": image_id,
        "volume": settings.volume,
        "port": settings.port,
        "network": "host" if host_network else "bridge",
    }
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:16]


def registry_run_command(ctx: StepContext, host_network: bool, spec: str) -> str:
    """The documented ``docker run``, plus a named volume and the spec label."""
    settings = ctx.inventory.registry
    if host_network:
        # Docker without iptables or bridge cannot publish ports (kolla-ansible hosts).
        network = f"--network host -e REGISTRY_HTTP_ADDR=0.0.0.0:{settings.port}"
    else:
        network = f"-p {settings.port}:5000"
    return (
        f"docker run -d {network} --restart=always --name {shlex.quote(settings.name)} "
        f"-v {shlex.quote(settings.volume)}:/var/lib/registry --label {SPEC_LABEL}={spec} "
        f"{shlex.quote(settings.image)}"
    )


def trust_method(facts: HostFacts, ctx: StepContext) -> str:
    """daemon.json unless asked otherwise or Docker predates it."""
    chosen = ctx.inventory.docker.config_method
    if chosen != "auto":
        return chosen
    installed = dc.version(facts.docker_version)
    return "docker-opts" if installed and installed < dc.DOCKERD_SINCE else "daemon-json"


def _trust_with_daemon_json(facts: HostFacts, ctx: StepContext, flagged: list[str], plan: StepPlan) -> None:
    if flagged and not ctx.repair:
        plan.error = (
            f"dockerd already gets --insecure-registry {' '.join(flagged)} as a flag "
            f"({DEFAULT_DOCKER} or its unit); adding the registry to {DAEMON_JSON} too would stop "
            "dockerd. Re-run with --repair to move the flags into daemon.json"
        )
        return
    if flagged:
        unit_flags = dc.flag_registries(dc.exec_start_argv(facts.unit.get("ExecStart", ""))[1:])
        if unit_flags:
            plan.error = (
                f"--insecure-registry {' '.join(unit_flags)} is set in docker.service's ExecStart "
                f"({facts.unit.get('FragmentPath', 'its unit')}): --repair only edits {DEFAULT_DOCKER}; "
                "remove it there by hand"
            )
            return
        cleaned = dc.without_flag_registries(facts.files.get(DEFAULT_DOCKER))
        plan.files.append(_file(facts, DEFAULT_DOCKER, cleaned))
    current = facts.files.get(DAEMON_JSON)
    try:
        merged = dc.with_insecure_registries(current, [*flagged, ctx.registry])
    except dc.ConfigError as error:
        plan.error = str(error)
        return
    if merged != current:
        plan.files.append(_file(facts, DAEMON_JSON, merged))
    if plan.files:
        # Flags only change on a restart; insecure-registries alone reloads.
        plan.handler = RESTART if flagged or not facts.docker_answers else RELOAD
    else:
        plan.notes.append(f"{ctx.registry} already in {DAEMON_JSON}")


def _trust_with_docker_opts(facts: HostFacts, ctx: StepContext, daemon: dict, plan: StepPlan) -> None:
    if "insecure-registries" in daemon:
        plan.error = (
            f"{DAEMON_JSON} already sets insecure-registries; setting them in DOCKER_OPTS too "
            "would stop dockerd. Use docker.config_method daemon-json"
        )
        return
    current = facts.files.get(DEFAULT_DOCKER)
    updated = dc.with_docker_opts_registry(current, ctx.registry)
    if updated == current:
        plan.notes.append(f"{ctx.registry} already in DOCKER_OPTS")
        return
    plan.files.append(_file(facts, DEFAULT_DOCKER, updated))
    plan.handler = RESTART


def _plan_pip(facts: HostFacts, plan: StepPlan) -> None:
    if facts.externally_managed:
        # PEP 668: pip must not touch the system Python; the OS owns it.
        plan.notes.append("system Python is externally managed (PEP 668): pip left to the OS")
    elif "python3-pip" in facts.packages and dc.version(facts.pip_version) < (20, 3):
        plan.commands.append("python3 -m pip install -U pip setuptools")


def _plan_mount_flags(facts: HostFacts, installed: tuple[int, ...], plan: StepPlan) -> None:
    if installed >= dc.MOUNTFLAGS_BREAKS_SINCE:
        for path in dc.mountflags_dropins(facts.dropins):
            plan.files.append(_file(facts, path, dc.without_mountflags(facts.files[path])))
            plan.notes.append(f"MountFlags=shared removed from {path}: it breaks Docker >= 18.09")
    else:
        if not dc.mountflags_dropins(facts.dropins):
            plan.files.append(_file(facts, dc.MOUNTFLAGS_DROPIN, dc.MOUNTFLAGS_TEXT))
        if facts.run_propagation != "shared":
            plan.files.append(_file(facts, SHARED_RUN_UNIT, SHARED_RUN_TEXT))
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


def _plan_image(ctx: StepContext, plan: StepPlan) -> None:
    settings = ctx.inventory.registry
    if settings.image_archive:
        # Air-gapped hosts: the image travels from this machine as a `docker save` archive.
        plan.uploads.append((settings.image_archive, ARCHIVE_ON_HOST))
        archive = shlex.quote(ARCHIVE_ON_HOST)
        plan.commands.append(f"docker load -i {archive} && rm -f {archive}")
    else:
        plan.commands.append(f"docker pull {shlex.quote(settings.image)}")


def _carry_data(container: dict, volume: str) -> list[str]:
    """Copy images from the old container's storage when the volume is new.

    The procedure's registry kept its images in an anonymous volume, which a
    recreated container would not see.
    """
    mounts = [m for m in container.get("Mounts", []) if m.get("Destination") == "/var/lib/registry"]
    if not mounts or mounts[0].get("Name") == volume:
        return []
    source = shlex.quote(mounts[0]["Source"])
    target = shlex.quote(volume)
    return [
        (
            f"if ! docker volume inspect {target} >/dev/null 2>&1; then docker volume create {target} >/dev/null; "
            f"cp -a {source}/. \"$(docker volume inspect -f '{{{{.Mountpoint}}}}' {target})\"/; fi"
        )
    ]


def _daemon_json_or_error(facts: HostFacts, plan: StepPlan) -> dict | None:
    try:
        return dc.load_daemon_json(facts.files.get(DAEMON_JSON))
    except dc.ConfigError as error:
        plan.error = str(error)
        return None


def _flags(facts: HostFacts) -> list[str]:
    argv = dc.exec_start_argv(facts.unit.get("ExecStart", ""))
    reads = dc.unit_reads_docker_opts(argv, facts.unit.get("EnvironmentFiles", ""), facts.dropins)
    return dc.effective_flags(argv, facts.files.get(DEFAULT_DOCKER), reads)


def _file(facts: HostFacts, path: str, after: str | None) -> FileChange:
    return FileChange(path, facts.files.get(path), after)


def _apt_based(facts: HostFacts) -> bool:
    family = {facts.os.get("ID", "")} | set(facts.os.get("ID_LIKE", "").split())
    return bool(family & {"debian", "ubuntu"})


DEPLOY_STEPS = (
    update_packages,
    upgrade_kernel,
    install_docker,
    create_registry,
    trust_registry,
    copy_docker_unit,
    add_docker_opts,
    restart_docker,
)
TARGET_STEPS = (trust_registry, copy_docker_unit, add_docker_opts)
