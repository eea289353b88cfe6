"""The lab's images, built on this machine and cached by its engine.

lab-node:SUITE-debootstrap  Debian SUITE (bookworm, trixie) as debootstrap made it (from the cached rootfs)
lab-node:SUITE              plus sources, sshd host keys made at boot, the operator user (deployment hosts)
lab-node:SUITE-docker       plus Debian's docker.io, enabled (Docker targets)
lab-node:SUITE-podman       plus Debian's podman, and no Docker (Podman targets)
registry:2                  Debian's docker-registry binary, also saved as an archive for air-gapped loads

Only the profiles a lab uses are built.

Each image carries a label with a hash of its recipe; a changed recipe rebuilds it.
"""

import hashlib
import shutil
import subprocess
from pathlib import Path

from .config import LABEL, MIRROR, NETWORK, REGISTRY_IMAGE, Profile, paths
from .engine import docker, docker_env
from .errors import LabError, LabUnavailable, say
from .host import run, tool

BUILD_CONTAINER = "lab-build"
RECIPE_LABEL = f"{LABEL}.recipe"
PACKAGES = [
    "openssh-server", "iproute2", "ca-certificates", "curl", "python3", "systemd",
    "systemd-sysv", "dbus", "procps", "sudo", "iputils-ping", "less", "gnupg",
]  # fmt: skip
NODE_CHANGES = ["-c", 'CMD ["/sbin/init"]', "-c", "ENV container=docker"]
# Units that cannot work in a container; masked so that the system is "running", not "degraded".
MASKED = [
    "getty@tty1.service", "serial-getty@ttyS0.service", "console-getty.service",
    "systemd-firstboot.service", "sys-kernel-config.mount", "sys-kernel-debug.mount",
    "sys-kernel-tracing.mount", "dev-hugepages.mount", "systemd-modules-load.service",
]  # fmt: skip
SOURCES = """\
set -e
cat > /etc/apt/sources.list <<'EOF'
deb {mirror} {suite} main
deb {mirror} {suite}-updates main
deb {mirror}-security {suite}-security main
EOF
"""
BASE_SCRIPT = f"""\
rm -f /etc/ssh/ssh_host_*
echo 'PasswordAuthentication no' > /etc/ssh/sshd_config.d/lab.conf
cat > /etc/systemd/system/lab-ssh-host-keys.service <<'EOF'
[Unit]
Description=Generate this machine's own SSH host keys
Before=ssh.service

[Service]
Type=oneshot
ExecStart=/usr/bin/ssh-keygen -A
RemainAfterExit=yes

[Install]
WantedBy=multi-user.target
EOF
cat > /usr/local/sbin/lab-ifindex <<'EOF'
#!/bin/sh
# eth0 arrives from the lab engine with a high interface index, so docker0 and any other
# interface made here would sort before it in `hostname -I`; on a real host eth0 comes first.
# Move this namespace's index counter past eth0's.
set -e
eth0=$(cat /sys/class/net/eth0/ifindex)
ip link add lab-ifindex type bridge
next=$(cat /sys/class/net/lab-ifindex/ifindex)
ip link del lab-ifindex
i=$next
while [ "$i" -lt "$eth0" ]; do
    echo "link add lab-ifindex type bridge"
    echo "link del lab-ifindex"
    i=$((i + 1))
done | ip -batch -
EOF
chmod 755 /usr/local/sbin/lab-ifindex
cat > /etc/systemd/system/lab-ifindex.service <<'EOF'
[Unit]
Description=Number eth0 before the interfaces made at boot, as on a real host
DefaultDependencies=no
Before=network-pre.target containerd.service docker.service
Wants=network-pre.target

[Service]
Type=oneshot
ExecStart=/usr/local/sbin/lab-ifindex
RemainAfterExit=yes

[Install]
WantedBy=sysinit.target
EOF
systemctl enable lab-ssh-host-keys.service lab-ifindex.service
systemctl mask {" ".join(MASKED)}
# Empty, not absent: systemd makes a fresh id in each container, without "first boot" units.
: > /etc/machine-id
rm -f /var/lib/dbus/machine-id
# Debian already has an "operator" group (base-passwd); the user joins it.
useradd -m -s /bin/bash -g operator operator
echo 'operator ALL=(ALL) NOPASSWD:ALL' > /etc/sudoers.d/operator
chmod 440 /etc/sudoers.d/operator
apt-get clean
"""
ENGINE_SCRIPT = """\
set -e
# Install without starting anything: there is no systemd in this build container.
printf '#!/bin/sh\\nexit 101\\n' > /usr/sbin/policy-rc.d
chmod +x /usr/sbin/policy-rc.d
apt-get update
DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends {packages}
{enable}
rm -f /usr/sbin/policy-rc.d /etc/ssh/ssh_host_*
apt-get clean
"""
ENABLE_DOCKER = "systemctl enable docker.service containerd.service"
# What each target profile installs on its suite; Podman has no daemon to enable.
ENGINES = {
    "bookworm-docker": {"packages": "docker.io", "enable": ENABLE_DOCKER},
    # From trixie the docker CLI is its own package (a Recommends of docker.io).
    "trixie-docker": {"packages": "docker.io docker-cli", "enable": ENABLE_DOCKER},
    "trixie-podman": {"packages": "podman crun", "enable": "podman --version"},
    "bookworm-podman": {"packages": "podman crun", "enable": "podman --version"},
}
REGISTRY_CHANGES = [
    "-c", 'ENTRYPOINT ["/bin/registry","serve","/etc/docker/registry/config.yml"]',
    "-c", "EXPOSE 5000",
    "-c", "VOLUME /var/lib/registry",
]  # fmt: skip
REGISTRY_CONFIG = """\
version: 0.1
log:
  fields:
    service: registry
storage:
  cache:
    blobdescriptor: inmemory
  filesystem:
    rootdirectory: /var/lib/registry
http:
  addr: :5000
  headers:
    X-Content-Type-Options: [nosniff]
health:
  storagedriver:
    enabled: true
    interval: 10s
    threshold: 3
"""


def _recipe(*parts: object) -> str:
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:16]


REGISTRY_RECIPE = _recipe(REGISTRY_CHANGES, REGISTRY_CONFIG)


def rootfs_recipe(suite: str) -> str:
    return _recipe(suite, MIRROR, PACKAGES)


# A lab host is a container whose /proc/sys is read-only, so Docker 26 cannot switch IPv6 off
# on a bridged container's interface, and would refuse to start it; a real host can.
DOCKER_IPV6_DROPIN = """\
mkdir -p /etc/systemd/system/docker.service.d
cat > /etc/systemd/system/docker.service.d/lab-ipv6.conf <<'EOF'
[Service]
Environment=DOCKER_ALLOW_IPV6_ON_IPV4_INTERFACE=1
EOF
"""
SUITE_EXTRAS = {"trixie": DOCKER_IPV6_DROPIN}


def base_script(suite: str) -> str:
    return SOURCES.format(mirror=MIRROR, suite=suite) + BASE_SCRIPT + SUITE_EXTRAS.get(suite, "")


def base_recipe(suite: str) -> str:
    return _recipe(rootfs_recipe(suite), NODE_CHANGES, base_script(suite))


def engine_script(profile: Profile) -> str:
    return ENGINE_SCRIPT.format(**ENGINES[profile.name])


def recipe(profile: Profile) -> str:
    """The hash of everything that makes a profile's image; a changed one rebuilds it."""
    base = base_recipe(profile.suite)
    return _recipe(base, engine_script(profile)) if profile.engine else base


def ensure_images(profiles: set[Profile]) -> None:
    """Each profile's image (and the base image under it), and registry:2."""
    for profile in sorted(profiles, key=lambda profile: profile.name):
        ensure_base(profile.suite)
        if profile.engine:
            ensure_engine_image(profile)
    ensure_registry()


def image_id(ref: str) -> str | None:
    result = docker("image", "inspect", "--format", "{{.Id}}", ref, check=False)
    return result.stdout.strip() if result.returncode == 0 else None


def ensure_base(suite: str) -> None:
    base = Profile(suite)
    if _recipe_of(base.image) == base_recipe(suite):
        return
    debootstrap = f"{base.image}-debootstrap"
    if _recipe_of(debootstrap) != rootfs_recipe(suite):
        rootfs = ensure_rootfs(suite)
        say(f"importing {debootstrap} from {rootfs}")
        _import(rootfs, [*NODE_CHANGES, *_label(rootfs_recipe(suite))], debootstrap)
    _build(debootstrap, base_script(suite), base.image, base_recipe(suite))


def ensure_engine_image(profile: Profile) -> None:
    if _recipe_of(profile.image) != recipe(profile):
        _build(Profile(profile.suite).image, engine_script(profile), profile.image, recipe(profile))


def ensure_registry() -> None:
    """registry:2 in the engine, and its `docker save` archive next to the inventory."""
    archive = paths().archive
    if _recipe_of(REGISTRY_IMAGE) != REGISTRY_RECIPE:
        say(f"building {REGISTRY_IMAGE} from Debian's docker-registry")
        archive.unlink(missing_ok=True)
        _import(_registry_rootfs(), [*REGISTRY_CHANGES, *_label(REGISTRY_RECIPE)], REGISTRY_IMAGE)
    if not archive.exists():
        say(f"saving {REGISTRY_IMAGE} to {archive}")
        archive.parent.mkdir(parents=True, exist_ok=True)
        partial = archive.with_name(archive.name + ".partial")
        docker("save", "-o", str(partial), REGISTRY_IMAGE)
        partial.rename(archive)


def ensure_rootfs(suite: str) -> Path:
    """debootstrap's Debian tree; only a finished one has the final name."""
    rootfs = paths().rootfs / f"{suite}-{rootfs_recipe(suite)}"
    if rootfs.is_dir():
        return rootfs
    rootfs.parent.mkdir(parents=True, exist_ok=True)
    for stale in rootfs.parent.glob(f"{suite}-*"):
        say(f"removing {stale} (half-built, or made from another package list)")
        _remove_tree(stale)
    partial = rootfs.with_name(rootfs.name + ".partial")
    log = paths().logs / f"debootstrap-{suite}.log"
    say(f"debootstrap {suite} into {partial} (about a minute; log: {log})")
    command = [
        tool("debootstrap"), "--variant=minbase", f"--include={','.join(PACKAGES)}",
        suite, str(partial), MIRROR,
    ]  # fmt: skip
    try:
        run(command, log=log, what="debootstrap")
    except LabError as error:
        raise LabUnavailable(f"{error} (run up again to retry)") from None
    finally:
        _unmount_under(partial)
    partial.rename(rootfs)
    return rootfs


def _build(source: str, script: str, ref: str, recipe: str) -> None:
    """Run a script in a container of source and commit the result as ref."""
    log = paths().logs / f"{ref.replace(':', '-')}.log"
    say(f"building {ref} from {source} (log: {log})")
    docker("rm", "-f", BUILD_CONTAINER, check=False)
    build = [tool("docker"), "run", "--name", BUILD_CONTAINER, "--network", NETWORK, source]
    run([*build, "sh", "-c", script], log=log, env=docker_env(), what=f"building {ref}")
    docker("commit", "-c", 'CMD ["/sbin/init"]', *_label(recipe), BUILD_CONTAINER, ref)
    docker("rm", "-f", BUILD_CONTAINER)


def _label(recipe: str) -> list[str]:
    return ["-c", f"LABEL {RECIPE_LABEL}={recipe}"]


def _recipe_of(ref: str) -> str | None:
    template = f'{{{{index .Config.Labels "{RECIPE_LABEL}"}}}}'
    result = docker("image", "inspect", "--format", template, ref, check=False)
    return result.stdout.strip() if result.returncode == 0 else None


def _registry_rootfs() -> Path:
    """/bin/registry, the libraries ldd names, and the upstream image's config."""
    rootfs = paths().root / "build" / "registry"
    shutil.rmtree(rootfs, ignore_errors=True)
    binary = tool("docker-registry")
    for source in [binary, *_libraries(binary)]:
        dest = rootfs / ("bin/registry" if source == binary else source.lstrip("/"))
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(source, dest)
    config = rootfs / "etc/docker/registry/config.yml"
    config.parent.mkdir(parents=True)
    config.write_text(REGISTRY_CONFIG)
    (rootfs / "var/lib/registry").mkdir(parents=True)
    (rootfs / "tmp").mkdir(mode=0o1777)
    return rootfs


def _libraries(binary: str) -> list[str]:
    result = subprocess.run(["ldd", binary], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        return []  # statically linked
    libraries = []
    for line in result.stdout.splitlines():
        words = line.split()
        if "=>" in words and len(words) > words.index("=>") + 1:
            libraries.append(words[words.index("=>") + 1])
        elif words and words[0].startswith("/"):
            libraries.append(words[0])
    return [library for library in libraries if library.startswith("/")]


def _import(rootfs: Path, changes: list[str], ref: str) -> None:
    tar = subprocess.Popen(["tar", "--numeric-owner", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE)
    try:
        docker("import", *changes, "-", ref, stdin=tar.stdout)
    finally:
        tar.stdout.close()
        tar.wait()
    if tar.returncode != 0:
        raise LabError(f"tar of {rootfs} failed: remove it and run up again")


def _mounts_under(path: Path) -> list[str]:
    prefix = f"{path}/"
    mounts = [line.split()[1] for line in Path("/proc/mounts").read_text().splitlines()]
    return sorted((mount for mount in mounts if mount.startswith(prefix)), key=len, reverse=True)


def _unmount_under(path: Path) -> None:
    """debootstrap mounts /proc and /sys (maybe /dev) inside its target."""
    for mount in _mounts_under(path):
        subprocess.run(["umount", "-l", mount], check=False)


def _remove_tree(path: Path) -> None:
    _unmount_under(path)
    # rmtree would walk into a mount and delete the host's files.
    if _mounts_under(path):
        raise LabError(f"{path} still has mounts: umount them (see /proc/mounts), then rm -rf {path}")
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink()
