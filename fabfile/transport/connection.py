"""SSH connections to inventory hosts, commands as root, and why a host failed."""

from __future__ import annotations

import errno
import shlex
import socket
import threading
from collections.abc import Callable

import paramiko
from fabric import Config, Connection
from fabric.runners import Result

from ..model.inventory import Host
from .hostkeys import checking_client, fingerprint, known_hosts_path

CONNECT_TIMEOUT = 10
# Called with each line of a command's output as it arrives.
LineCallback = Callable[[str], None] | None


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
    any key (Fabric's default). A changed key is always refused.
    """
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
    return connection


# A script comes on stdin, never on the command line, where any local user would see it (and
# the files it writes) in ps: the shell reads all of it, then runs it with stdin from /dev/null.
FROM_STDIN = 'eval "$(cat)" </dev/null'
COMMAND_TIMEOUT = 1800


class CommandTimeout(Exception):
    """A command did not finish in time; on the host it was killed, so it holds no lock."""


def bounded_shell(timeout: int) -> str:
    """The command line that runs a script from stdin, stopped (its whole process group) after ``timeout`` s."""
    return f"timeout -k 10 {int(timeout)} sh -c {shlex.quote(FROM_STDIN)}"


def run_as_root(
    connection: Connection, host: Host, script: str, timeout: int = COMMAND_TIMEOUT, on_line: LineCallback = None
) -> Result:
    """Run a shell script as root, killed on the host after ``timeout`` s; never raises for a non-zero exit.

    ``on_line`` sees each line of its output as it comes (not under sudo with a password)."""
    shell = bounded_shell(timeout)
    # The local wait is a little longer, so that the host's timeout speaks first.
    waited = timeout + 30
    if host.user == "root":
        return execute(connection, shell, script, waited, on_line)
    if connection.config.sudo.password is None:
        # -n: fail at once instead of waiting for a password nobody will type.
        return execute(connection, "sudo -n " + shell, script, waited, on_line)
    return _sudo_with_password(connection, script, timeout)


def _sudo_with_password(connection: Connection, script: str, timeout: int) -> Result:
    """sudo reads its password on stdin, so the script goes as a file only its owner can read."""
    made = execute(connection, "mktemp", timeout=30)
    path = made.stdout.strip()
    if not made.ok or not path.startswith("/"):
        return made
    try:
        with connection.sftp().open(path, "w") as remote:
            remote.write(script)
        # Only invoke's runner answers sudo's password prompt.
        command = f"timeout -k 10 {int(timeout)} sh {shlex.quote(path)} </dev/null"
        return connection.sudo(command, hide=True, warn=True, in_stream=False, timeout=timeout + 30)
    finally:
        execute(connection, f"rm -f {shlex.quote(path)}", timeout=30)


def execute(
    connection: Connection, command: str, stdin: str = "", timeout: float | None = None, on_line: LineCallback = None
) -> Result:
    """Run ``command`` in one exec session, ``stdin`` sent to it; its output and exit status.

    Straight on paramiko's channel: invoke's runner polls every 10 ms and
    starts three threads per command, which a fan-out to many hosts pays for.
    Raises ``CommandTimeout`` when no output or exit comes for ``timeout`` s.
    """
    connection.open()
    channel = connection.transport.open_session()
    channel.settimeout(timeout)
    try:
        channel.exec_command(command)
        if stdin:
            channel.sendall(stdin.encode())
        channel.shutdown_write()  # the end of stdin: a command reading it sees EOF
        stderr: list[bytes] = []
        # stderr is drained alongside stdout, so that neither can fill the window and stall the other.
        reader = threading.Thread(target=lambda: stderr.append(_read_all(channel.makefile_stderr("rb"))))
        reader.start()
        stdout = _read_all(channel.makefile("rb"), on_line)
        reader.join()
        if stdout is None or None in stderr or not channel.status_event.wait(timeout):
            raise CommandTimeout(f"no answer within {timeout:.0f} s")
        exited = channel.recv_exit_status()
    finally:
        channel.close()
    return Result(
        connection=connection,
        command=command,
        stdout=stdout.decode("utf-8", "replace"),
        stderr=b"".join(stderr).decode("utf-8", "replace"),
        exited=exited,
        hide=("stdout", "stderr"),
    )


def _read_all(stream, on_line: LineCallback = None) -> bytes | None:
    try:
        if on_line is None:
            return stream.read()
        lines = []
        for line in stream:
            lines.append(line)
            on_line(line.decode("utf-8", "replace").rstrip("\n"))
        return b"".join(lines)
    except TimeoutError:
        return None


def unreachable_reason(error: BaseException, host: Host) -> str | None:
    """A one-line reason when ``error`` means ``host`` could not be reached."""
    where = f"{host.user}@{host.address}:{host.port}"
    if isinstance(error, paramiko.BadHostKeyException):
        return (
            f"host key of {where} has CHANGED: {known_hosts_path(host)} has {fingerprint(error.expected_key)}, "
            f"the host showed {fingerprint(error.key)}: refused"
        )
    if isinstance(error, paramiko.AuthenticationException):
        key = f" with key {host.key}" if host.key else ""
        return f"authentication failed for {where}{key}"
    if isinstance(error, paramiko.SSHException) and "known_hosts" in str(error):
        return f"unknown host key for {where} (not in {known_hosts_path(host)}; host_key_policy strict): refused"
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
