"""The lab's hosts: systemd containers on the lab network, each with a fixed address."""

import json
import os
import subprocess
import tempfile
import time

from .config import LABEL, NETWORK, PROFILE_LABEL, SUBNET, Profile, gateway, host_number, node_ip, paths
from .engine import docker, docker_env
from .errors import LabError, say
from .host import tool

BOOT_TIMEOUT = 180
SSH_TIMEOUT = 60
RUN_FLAGS = [
    "--cap-add", "ALL", "--cap-drop", "SYS_RESOURCE",
    "--security-opt", "seccomp=unconfined", "--security-opt", "apparmor=unconfined",
    "-v", "/sys/fs/cgroup:/sys/fs/cgroup:rw", "--cgroupns=host",
    # Engine stores on volumes: overlay cannot sit on the container's own overlay.
    "--tmpfs", "/run", "--tmpfs", "/run/lock", "-v", "/var/lib/docker", "-v", "/var/lib/containers",
    # systemd shuts down cleanly on SIGRTMIN+3, and ignores docker's default SIGTERM.
    "--stop-signal", "SIGRTMIN+3",
]  # fmt: skip
# The image's lab-ifindex (see images.py) numbered eth0 last by making and deleting one link per index up
# to eth0's, which the lab engine hands out from its own ever-growing count: 15 s a boot at index 430,
# all of it under the kernel's one rtnl lock, so a 100-node lab took 12 minutes to come up. This one is
# mounted over it, so the images (and other users' copies of them) stay as they are: eth0 goes out to a
# scratch namespace and back while a placeholder holds its old index, and so returns with this
# namespace's next, low one; its addresses and default route are put back. Constant time.
IFINDEX_SCRIPT = """\
#!/bin/sh
set -u
old=$(cat /sys/class/net/eth0/ifindex)
addresses=$(ip -4 -o addr show dev eth0 | awk '{print $4}')
gateway=$(ip -4 route show default dev eth0 | awk '{print $3; exit}')
ip netns del lab-ifindex 2>/dev/null
ip netns add lab-ifindex &&
    ip link set eth0 netns lab-ifindex &&
    ip link add lab-hold index "$old" type bridge &&
    ip -n lab-ifindex link set eth0 netns 1
moved=$?
# eth0 back here whatever happened above, then its addresses and route.
ip -n lab-ifindex link set eth0 netns 1 2>/dev/null
ip link del lab-hold 2>/dev/null
ip netns del lab-ifindex 2>/dev/null
ip link set eth0 up || exit 1
for address in $addresses; do ip addr replace "$address" dev eth0 || exit 1; done
[ -z "$gateway" ] || ip route replace default via "$gateway" dev eth0 || exit 1
exit $moved
"""
IFINDEX_IN_IMAGE = "/usr/local/sbin/lab-ifindex"
HOST_KEY_TYPES = ("ed25519", "ecdsa", "rsa")
# One docker exec per try: systemd's state on the first line; once it is up (or degraded), the lab key
# (on stdin) authorised for root and operator, then the host's public keys, one a line.
BOOT_SCRIPT = f"""\
state=$(systemctl is-system-running --wait </dev/null 2>/dev/null)
echo "${{state:-offline}}"
case "$state" in running|degraded) ;; *) exit 0 ;; esac
set -e
install -d -m 700 /root/.ssh
cat > /root/.ssh/authorized_keys
chmod 600 /root/.ssh/authorized_keys
install -d -m 700 -o operator -g operator /home/operator/.ssh
install -m 600 -o operator -g operator /root/.ssh/authorized_keys /home/operator/.ssh/
for kind in {" ".join(HOST_KEY_TYPES)}; do cat /etc/ssh/ssh_host_${{kind}}_key.pub; done
"""


class NodeNotReady(LabError):
    """A host did not boot to a running system with sshd."""


def ensure_network() -> None:
    if docker("network", "inspect", NETWORK, check=False).returncode == 0:
        return
    say(f"creating network {NETWORK} ({SUBNET})")
    docker(
        "network", "create", "--driver", "bridge", "--subnet", str(SUBNET), "--gateway", gateway(),
        "-o", f"com.docker.network.bridge.name={NETWORK}", "--label", LABEL, NETWORK,
    )  # fmt: skip


def remove_dangling_volumes() -> None:
    """The lab engine's anonymous volumes no container uses (named volumes are never the lab's hosts')."""
    listed = docker("volume", "ls", "-q", "--filter", "dangling=true").stdout.split()
    anonymous = [name for name in listed if len(name) == 64 and all(c in "0123456789abcdef" for c in name)]
    if anonymous:
        docker("volume", "rm", *anonymous, check=False)


def remove_network() -> None:
    docker("network", "rm", NETWORK, check=False)


def lab_containers() -> list[str]:
    """Names of every container the lab made, in host order."""
    result = docker("ps", "-a", "--filter", f"label={LABEL}", "--format", "{{.Names}}")
    return sorted(result.stdout.split(), key=_order)


def inspect(name: str) -> dict | None:
    result = docker("container", "inspect", name, check=False)
    return json.loads(result.stdout)[0] if result.returncode == 0 else None


def state(info: dict) -> str:
    return info["State"]["Status"]


def inspect_all(names: list[str]) -> dict[str, dict]:
    """The containers called ``names`` that exist (the lab's or not), inspected in one call."""
    if not names:
        return {}
    # Exit status 1 when some do not exist: the ones that do are still printed.
    result = docker("container", "inspect", *names, check=False)
    found = json.loads(result.stdout) if result.stdout.strip() else []
    return {info["Name"].lstrip("/"): info for info in found}


def ensure(name: str, profile: Profile, info: dict | None, image: str | None) -> str:
    """Reuse a running host, start a stopped one, replace one that is not what the lab makes.

    ``info``: the host's container as inspected (None: there is none); ``image``: the id of the
    profile's current image.
    """
    if info is not None and not _as_built(info, name, image):
        say(f"{name}: replacing a container that is not the lab's current {profile.image}")
        remove(name)
        info = None
    if info is None:
        create(name, profile)
        return "created"
    if state(info) == "running":
        return "running"
    if docker("start", name, check=False).returncode != 0:
        say(f"{name}: will not start; recreating it")
        remove(name)
        create(name, profile)
        return "created"
    return "started"


def run_flags() -> list[str]:
    """``docker run``'s flags for a lab host: RUN_FLAGS and the constant-time lab-ifindex mounted in."""
    script = paths().root / "bin" / "lab-ifindex"
    if not script.exists() or script.read_text() != IFINDEX_SCRIPT:
        script.parent.mkdir(parents=True, exist_ok=True)
        # Hosts are made several at once: each writes its own partial file, and the last rename wins.
        with tempfile.NamedTemporaryFile("w", dir=script.parent, prefix=".lab-ifindex.", delete=False) as partial:
            partial.write(IFINDEX_SCRIPT)
        os.chmod(partial.name, 0o755)
        os.replace(partial.name, script)
    return [*RUN_FLAGS, "-v", f"{script}:{IFINDEX_IN_IMAGE}:ro"]


def create(name: str, profile: Profile) -> None:
    role = "deploy" if host_number(name) == 0 else "target"
    docker(
        "run", "-d", "--name", name, "--hostname", name,
        "--network", NETWORK, "--ip", node_ip(name),
        "--label", LABEL, "--label", f"{LABEL}.role={role}", "--label", f"{PROFILE_LABEL}={profile.name}",
        *run_flags(), profile.image, "/sbin/init",
    )  # fmt: skip


def profile_of(info: dict) -> str:
    """The profile a host was made from (its label)."""
    return (info["Config"]["Labels"] or {}).get(PROFILE_LABEL, "-")


def remove(name: str) -> None:
    docker("rm", "-f", "-v", name, check=False)


def stop(name: str) -> None:
    docker("stop", name)


def start(name: str) -> None:
    docker("start", name)


def boot(name: str, address: str | None = None, degraded_ok: bool = False) -> list[str]:
    """Wait until systemd says "running", authorise the lab key, and return the host keys as
    known_hosts lines for ``address`` (default: the host's fixed one): one docker exec a try."""
    deadline = time.monotonic() + BOOT_TIMEOUT
    status = ""
    while time.monotonic() < deadline:
        status, keys = _boot_once(name, deadline)
        if status == "running" or (status == "degraded" and degraded_ok):
            return [f"{address or node_ip(name)} {kind} {blob}" for kind, blob in keys]
        if status == "degraded":
            raise NodeNotReady(f"{name} booted degraded, failed units: {_failed_units(name)}")
        info = inspect(name)
        if info is None or state(info) != "running":
            raise NodeNotReady(f"{name} stopped while booting (docker logs {name})")
        time.sleep(1)
    raise NodeNotReady(f"{name} did not boot within {BOOT_TIMEOUT}s (systemd: {status or 'no answer'})")


def wait_for_ssh(name: str) -> None:
    """Log in for real: the lab key, strict checking against the lab's known_hosts."""
    lab = paths()
    command = [
        tool("ssh"), "-F", "/dev/null", "-i", str(lab.key), "-o", "IdentitiesOnly=yes",
        "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes",
        "-o", f"UserKnownHostsFile={lab.known_hosts}", "-o", "ConnectTimeout=5",
        f"root@{node_ip(name)}", "true",
    ]  # fmt: skip
    deadline = time.monotonic() + SSH_TIMEOUT
    while True:
        result = subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)
        if result.returncode == 0:
            return
        if time.monotonic() > deadline:
            raise NodeNotReady(f"ssh root@{node_ip(name)} ({name}) fails: {result.stderr.strip()}")
        time.sleep(1)


def _as_built(info: dict, name: str, image: str | None) -> bool:
    """Made by the lab, from the profile's current image (``image``), at the host's fixed address."""
    networks = info["NetworkSettings"]["Networks"]
    ipam = (networks.get(NETWORK) or {}).get("IPAMConfig") or {}
    return (
        LABEL in (info["Config"]["Labels"] or {})
        and info["Image"] == image
        and ipam.get("IPv4Address") == node_ip(name)
    )


def _boot_once(name: str, deadline: float) -> tuple[str, list[tuple[str, str]]]:
    """systemd's state and, once it is up, the key authorised and the host's public keys (kind, blob)."""
    command = [tool("docker"), "exec", "-i", name, "sh", "-c", BOOT_SCRIPT]
    try:
        result = subprocess.run(
            command,
            env=docker_env(),
            input=paths().key.with_suffix(".pub").read_text(),
            capture_output=True,
            text=True,
            timeout=max(1.0, deadline - time.monotonic()),
            check=False,
        )
    except subprocess.TimeoutExpired:
        return "starting", []
    lines = result.stdout.splitlines()
    status = lines[0].strip() if lines else ""
    if status in ("running", "degraded") and result.returncode != 0:
        raise NodeNotReady(f"{name}: authorising the lab key failed: {result.stderr.strip()[-200:]}")
    keys = [tuple(line.split()[:2]) for line in lines[1:] if len(line.split()) >= 2]
    return status, keys


def _failed_units(name: str) -> str:
    result = docker("exec", name, "systemctl", "--failed", "--plain", "--no-legend", check=False)
    return ", ".join(line.split()[0] for line in result.stdout.splitlines() if line.strip()) or "?"


def _order(name: str) -> tuple[int, str]:
    try:
        return host_number(name), name
    except LabError:
        return 1_000_000, name
