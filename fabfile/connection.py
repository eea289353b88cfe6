"""SSH connections to inventory hosts, commands as root, and why a host failed."""

from __future__ import annotations

import shlex
import socket

import paramiko
from fabric import Config, Connection
from invoke.runners import Result

from .inventory import Host

CONNECT_TIMEOUT = 10


def connect(host: Host, config: Config | None = None, timeout: int = CONNECT_TIMEOUT) -> Connection:
    """A connection to ``host``; strict host-key checking when it names known_hosts."""
    connect_kwargs = {"key_filename": host.key} if host.key else {}
    connection = Connection(
        host.address,
        user=host.user,
        port=host.port,
        config=config,
        connect_timeout=timeout,
        connect_kwargs=connect_kwargs,
    )
    if host.known_hosts:
        # Only the inventory's known_hosts counts: unknown or changed keys are refused.
        client = paramiko.SSHClient()
        try:
            client.load_host_keys(host.known_hosts)
        except OSError as error:
            raise HostKeyFileError(f"{host.known_hosts}: cannot read: {error.strerror}") from None
        client.set_missing_host_key_policy(paramiko.RejectPolicy())
        connection.client = client
    return connection


class HostKeyFileError(Exception):
    """The inventory's known_hosts file cannot be read."""


def run_as_root(connection: Connection, host: Host, script: str) -> Result:
    """Run a shell script as root; never raises for a non-zero exit."""
    command = "sh -c " + shlex.quote(script)
    options = {"hide": True, "warn": True, "in_stream": False}
    if host.user == "root":
        return connection.run(command, **options)
    if connection.config.sudo.password is None:
        # -n: fail at once instead of waiting for a password nobody will type.
        return connection.run("sudo -n " + command, **options)
    return connection.sudo(command, **options)


def unreachable_reason(error: BaseException, host: Host) -> str | None:
    """A one-line reason when ``error`` means ``host`` could not be reached."""
    where = f"{host.user}@{host.address}:{host.port}"
    if isinstance(error, paramiko.BadHostKeyException):
        return f"host key of {where} has CHANGED (not the one in {host.known_hosts}): refused"
    if isinstance(error, paramiko.AuthenticationException):
        key = f" with key {host.key}" if host.key else ""
        return f"authentication failed for {where}{key}"
    if isinstance(error, paramiko.SSHException) and "known_hosts" in str(error):
        return f"unknown host key for {where} (not in {host.known_hosts}): refused"
    if isinstance(error, socket.gaierror):
        return f"no known address for {host.address}"
    if isinstance(error, (socket.timeout, TimeoutError)):
        return f"SSH to {where} timed out"
    if isinstance(error, paramiko.ssh_exception.NoValidConnectionsError):
        return f"SSH connection to {where} refused"
    if isinstance(error, (OSError, EOFError, paramiko.SSHException)):
        return f"SSH to {where} failed: {str(error) or type(error).__name__}"
    return None


def sudo_hint(result: Result) -> str:
    """Why a command that never ran as root failed, if that is the reason."""
    if "a password is required" in result.stderr:
        return "sudo needs a password: run fab with --prompt-for-sudo-password"
    return ""
