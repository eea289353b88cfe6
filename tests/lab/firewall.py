"""Keep the lab's hosts off the internet: they may reach each other and the Debian mirror only."""

import socket
import subprocess
from pathlib import Path

from .config import NETWORK
from .engine import docker
from .errors import LabError
from .host import tool

CHAIN = "KOLLA-LAB-EGRESS"
MIRROR_HOST = "deb.debian.org"
JUMP = ["DOCKER-USER", "-i", NETWORK, "!", "-o", NETWORK, "-j", CHAIN]


def restrict_egress() -> None:
    """(Re)write the chain that every packet leaving the lab network goes through."""
    mirror = _addresses(MIRROR_HOST)
    _iptables("-N", CHAIN, check=False)
    _iptables("-F", CHAIN)
    _iptables("-A", CHAIN, "-m", "conntrack", "--ctstate", "ESTABLISHED,RELATED", "-j", "RETURN")
    # Docker's embedded DNS forwards the nodes' lookups from their own network namespace.
    for resolver in _resolvers():
        for proto in ("udp", "tcp"):
            _iptables("-A", CHAIN, "-d", resolver, "-p", proto, "--dport", "53", "-j", "RETURN")
    for address in mirror:
        _iptables(
            "-A", CHAIN, "-d", address, "-p", "tcp", "-m", "multiport", "--dports", "80,443",
            "-j", "RETURN",
        )  # fmt: skip
    _iptables("-A", CHAIN, "-j", "REJECT", "--reject-with", "icmp-admin-prohibited")
    if _iptables("-C", *JUMP, check=False).returncode != 0:
        _iptables("-I", *JUMP)


def open_egress() -> None:
    """Remove the chain (the lab network is gone)."""
    while _iptables("-D", *JUMP, check=False).returncode == 0:
        pass
    _iptables("-F", CHAIN, check=False)
    _iptables("-X", CHAIN, check=False)


def _addresses(host: str) -> list[str]:
    try:
        infos = socket.getaddrinfo(host, 80, socket.AF_INET, socket.SOCK_STREAM)
    except OSError as error:
        raise LabError(f"cannot resolve {host} ({error}): the lab's hosts need the Debian mirror")
    return sorted({info[4][0] for info in infos})


def _resolvers() -> list[str]:
    servers = []
    for line in Path("/etc/resolv.conf").read_text().splitlines():
        fields = line.split()
        # A loopback resolver is this machine's, not one the nodes can reach.
        if fields[:1] == ["nameserver"] and "." in fields[1] and not fields[1].startswith("127."):
            servers.append(fields[1])
    return servers


def _iptables(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([tool("iptables"), "-w", *args], capture_output=True, text=True, check=False)
    if check and result.returncode != 0:
        raise LabError(f"iptables {' '.join(args)} failed: {result.stderr.strip()}")
    return result


def cut_off(name: str, address: str) -> None:
    """Lab host ``name`` can no longer reach ``address`` (a rule in its own network namespace): an isolated site."""
    if _in_host(name, "-C", "OUTPUT", "-d", address, "-j", "REJECT", check=False).returncode != 0:
        _in_host(name, "-I", "OUTPUT", "-d", address, "-j", "REJECT")


def reconnect(name: str, address: str) -> None:
    """Undo ``cut_off``."""
    while _in_host(name, "-D", "OUTPUT", "-d", address, "-j", "REJECT", check=False).returncode == 0:
        pass


def _in_host(name: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """iptables in the network namespace of lab host ``name`` (its container's), from this machine."""
    pid = docker("inspect", "-f", "{{.State.Pid}}", name).stdout.strip()
    command = [tool("nsenter"), "-t", pid, "-n", tool("iptables"), "-w", *args]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if check and result.returncode != 0:
        raise LabError(f"iptables {' '.join(args)} in {name}: {result.stderr.strip()}")
    return result
