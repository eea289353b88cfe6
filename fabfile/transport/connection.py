"""SSH connections to inventory hosts, commands as root, and why a host failed."""

from __future__ import annotations

import errno
import shlex
import socket
from dataclasses import replace

import paramiko
from fabric import Config, Connection
from fabric.runners import Result

from ..model.inventory import Host
from .channel import LineCallback, SudoGate, execute
from .hostkeys import (
    HostKeyFileError,
    RevokedHostKey,
    UnknownHostKey,
    checking_client,
    fingerprint,
    known_hosts_file,
    known_hosts_path,
)

CONNECT_TIMEOUT = 10
# How long an upload may wait for the host: to open its session, to take each write, to finish.
UPLOAD_TIMEOUT = 120


class NoDelayConnection(Connection):
    """A Fabric connection whose socket sends each SSH packet at once (TCP_NODELAY).

    With Nagle's algorithm on, every SSH request that follows another before
    its ACK waits for the server's delayed ACK (40 ms here): that doubled the
    handshake and made each command cost 45 ms more on an idle LAN.
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        # Fabric may hand every connection the config's own dict: open() puts a socket in ours.
        self.connect_kwargs = dict(self.connect_kwargs)

    def open(self):
        if self.is_connected or self.gateway or "sock" in self.connect_kwargs:
            return super().open()
        self.connect_kwargs["sock"] = nodelay_socket(self.host, self.port, self.connect_timeout)
        try:
            return super().open()
        except BaseException:
            self.connect_kwargs["sock"].close()
            raise
        finally:
            del self.connect_kwargs["sock"]


def nodelay_socket(host: str, port: int, timeout: float | None) -> socket.socket:
    """A connected TCP socket with TCP_NODELAY; refusals raised as paramiko raises them."""
    errors: dict[tuple, OSError] = {}
    for family, kind, proto, _, address in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM):
        sock = socket.socket(family, kind, proto)
        sock.settimeout(timeout)
        try:
            sock.connect(address)
        except OSError as error:
            sock.close()
            # Like paramiko: refused or unreachable tries the next address, anything else is final.
            if error.errno not in (errno.ECONNREFUSED, errno.EHOSTUNREACH):
                raise
            errors[address] = error
            continue
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock
    raise paramiko.ssh_exception.NoValidConnectionsError(errors)


def connect(host: Host, config: Config | None = None, timeout: int = CONNECT_TIMEOUT) -> Connection:
    """A connection to ``host``, its host key checked as ``host.host_key_policy`` says.

    accept-new (default, as OpenSSH's StrictHostKeyChecking=accept-new): keys in the
    known_hosts file (the inventory's, else ~/.ssh/known_hosts) are checked, an
    unknown host's key is accepted and saved there; strict: known keys only; off:
    any key (Fabric's default), refused with a sudo password. A changed or revoked
    key is always refused. Every ProxyJump gateway on the way is checked the same way.
    """
    refuse_unchecked_password(host, config.sudo.password if config else None)
    connect_kwargs = {"key_filename": host.key} if host.key else {}
    connection = NoDelayConnection(
        host.address,
        user=host.user,
        port=host.port,
        config=config,
        connect_timeout=timeout,
        connect_kwargs=connect_kwargs,
    )
    if host.host_key_policy != "off":
        connection.client = checking_client(host)
        for gateway in gateways(connection):
            gateway.client = checking_client(gateway_host(host, gateway))
    return connection


def gateways(connection: Connection) -> list[Connection]:
    """The ProxyJump hops (from ssh_config or Fabric's gateway setting) before ``connection``, nearest first."""
    found = []
    hop = connection.gateway
    while isinstance(hop, Connection):
        found.append(hop)
        hop = hop.gateway
    return found


def gateway_host(host: Host, gateway: Connection) -> Host:
    """A gateway as a host whose key is checked like ``host``'s: the same known_hosts file and policy."""
    return replace(host, name=gateway.host, address=gateway.host, port=gateway.port, user=gateway.user, key=None)


# A script comes on stdin, never on the command line, where any local user would see it (and
# the files it writes) in ps: the shell reads all of it, then runs it with stdin from /dev/null.
FROM_STDIN = 'eval "$(cat)" </dev/null'
COMMAND_TIMEOUT = 1800


def bounded_shell(timeout: int) -> str:
    """The command line that runs a script from stdin, stopped (its whole process group) after ``timeout`` s."""
    return f"timeout -k 10 {int(timeout)} sh -c {shlex.quote(FROM_STDIN)}"


def run_as_root(
    connection: Connection, host: Host, script: str, timeout: int = COMMAND_TIMEOUT, on_line: LineCallback = None
) -> Result:
    """Run a shell script as root, killed on the host after ``timeout`` s; never raises for a non-zero exit.

    ``on_line`` sees each line of its output as it comes. With a sudo password, sudo reads it on stdin
    and the script follows it there (``channel.SudoGate``): never a file, never an argument."""
    shell = bounded_shell(timeout)
    # The local wait is a little longer, so that the host's timeout speaks first.
    waited = timeout + 30
    if host.user == "root":
        return execute(connection, shell, script, waited, on_line)
    password = connection.config.sudo.password
    if password is None:
        # -n: fail at once instead of waiting for a password nobody will type.
        return execute(connection, "sudo -n " + shell, script, waited, on_line)
    refuse_unchecked_password(host, password)
    return execute(connection, "", script, waited, on_line, SudoGate(shell, password))


def refuse_unchecked_password(host: Host, password: str | None) -> None:
    """A sudo password never goes to a host whose key is not checked: whoever answers at its address would get it."""
    if password is not None and host.host_key_policy == "off":
        raise UncheckedHost(
            f"{host.user}@{host.address}: host_key_policy off with a sudo password: refused "
            "(the password would go to whoever answers there; use accept-new or strict)"
        )


class UncheckedHost(Exception):
    """A sudo password was given for a host whose key is not checked (host_key_policy off)."""


def unreachable_reason(error: BaseException, host: Host) -> str | None:
    """A one-line reason when ``error`` means ``host`` could not be reached (or was refused before anything went)."""
    where = f"{host.user}@{host.address}:{host.port}"
    if isinstance(error, (UncheckedHost, HostKeyFileError)):
        return str(error)
    if isinstance(error, paramiko.BadHostKeyException):
        return (
            f"host key of {_who(error.hostname, host, where)} has CHANGED: {known_hosts_path(host)} has "
            f"{fingerprint(error.expected_key)}, the host showed {fingerprint(error.key)}: refused"
        )
    if isinstance(error, RevokedHostKey):
        return f"host key of {_who(error.hostname, host, where)} ({fingerprint(error.key)}) is @revoked in {known_hosts_path(host)}: refused"
    if isinstance(error, UnknownHostKey):
        return f"unknown host key for {_who(error.hostname, host, where)} (not in {known_hosts_path(host)}; host_key_policy strict): refused{_authorities_note(host)}"
    if isinstance(error, paramiko.AuthenticationException):
        key = f" with key {host.key}" if host.key else ""
        return f"authentication failed for {where}{key}"
    if isinstance(error, socket.gaierror):
        return f"no known address for {host.address}"
    if isinstance(error, (socket.timeout, TimeoutError)):
        return f"SSH to {where} timed out"
    if isinstance(error, paramiko.ssh_exception.NoValidConnectionsError):
        return f"SSH connection to {where} refused"
    if isinstance(error, (OSError, EOFError, paramiko.SSHException)):
        return f"SSH to {where} failed: {str(error) or type(error).__name__}"
    return None


def _who(hostname: str, host: Host, where: str) -> str:
    """``where`` when paramiko's ``hostname`` is the host itself, else the gateway it names."""
    return where if hostname in (host.address, f"[{host.address}]:{host.port}") else f"the gateway {hostname}"


def _authorities_note(host: Host) -> str:
    try:
        skipped = known_hosts_file(known_hosts_path(host)).authorities
    except HostKeyFileError:
        return ""
    return f" (its {skipped} @cert-authority line(s) are not used: host certificates are not checked; add the host's own key)" if skipped else ""


def sudo_hint(result: Result) -> str:
    """Why a command that never ran as root failed, if that is the reason."""
    if "a password is required" in result.stderr:
        return "sudo needs a password: run fab with --prompt-for-sudo-password"
    if "incorrect password" in result.stderr or "no password was provided" in result.stderr:
        return "sudo refused the password given with --prompt-for-sudo-password"
    return ""
