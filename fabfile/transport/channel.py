"""One command in one SSH exec session: its stdin sent, its output read, every wait bounded.

With a sudo password, the password is the first line of stdin and the script
follows only once root's shell says it runs: the script is never a file the
login user could change before root reads it, and never a password attempt.
"""

from __future__ import annotations

import secrets
import shlex
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import BinaryIO

from fabric import Connection
from fabric.runners import Result

# Called with each line of a command's output as it arrives.
LineCallback = Callable[[str], None] | None
# How long sudo may take to accept a password (PAM, a directory service) before the host fails.
SUDO_WAIT = 60
# Bytes handed to paramiko at once: it cuts them into 32 KiB packets, but each call and each
# small packet costs Python time (a tar written 16 KiB at a time went at half the speed).
SEND_BUFFER = 1 << 20
# What writes a command's stdin, given a file-like object that sends to it (see ``execute``).
Producer = Callable[[BinaryIO], None]


class CommandTimeout(Exception):
    """A command did not finish in time; on the host it was killed, so it holds no lock."""


@dataclass(frozen=True)
class SudoGate:
    """sudo, given its password on stdin, then root's shell running ``shell`` on the rest of stdin.

    sudo reads the first line as the password only if it asks for one; root's
    shell then prints ``ready``, skips lines up to ``nonce`` (the password too,
    when sudo did not ask) and runs ``shell``. The words are random, so no
    output can forge them; a second ``prompt`` means a wrong password.
    """

    shell: str
    password: str = field(repr=False)
    word: str = field(default_factory=lambda: secrets.token_hex(8))

    @property
    def prompt(self) -> str:
        return f"kolla-registry-password-{self.word}:"

    @property
    def ready(self) -> bytes:
        return f"kolla-registry-root-{self.word}\n".encode()

    @property
    def nonce(self) -> str:
        return f"kolla-registry-go-{self.word}"

    @property
    def command(self) -> str:
        gate = (
            f'echo kolla-registry-root-{self.word}; while IFS= read -r l; do [ "$l" = {self.nonce} ] '
            f'&& exec {self.shell}; done; echo "sudo: no script came" >&2; exit 1'
        )
        return f"sudo -S -p {shlex.quote(self.prompt)} sh -c {shlex.quote(gate)}"

    def cleaned(self, stderr: str) -> str:
        """sudo's errors without its prompts (nor the password, should anything echo it)."""
        return stderr.replace(self.prompt, "").replace(self.password, "***") if self.password else stderr


def execute(
    connection: Connection,
    command: str,
    stdin: str | Producer = "",
    timeout: float | None = None,
    on_line: LineCallback = None,
    sudo: SudoGate | None = None,
) -> Result:
    """Run ``command`` in one exec session, ``stdin`` sent to it; its output and exit status.

    Straight on paramiko's channel: invoke's runner polls every 10 ms and
    starts three threads per command, which a fan-out to many hosts pays for.
    Raises ``CommandTimeout`` when no output or exit comes for ``timeout`` s, or the command takes
    none of its stdin for that long. ``stdin`` is a string, or a producer that writes bytes to a file-like
    object (a stream: an upload); a command that stops reading it is not an error here, its exit status
    and output say why. With ``sudo``, ``command`` is ignored: its gate runs, answered first.
    """
    connection.open()
    channel = connection.transport.open_session(timeout=timeout)
    channel.settimeout(timeout)
    early_out = early_err = b""
    try:
        channel.exec_command(sudo.command if sudo else command)
        if sudo is not None:
            early_out, early_err, taken = _answer_sudo(channel, sudo)
            stdin = f"{sudo.nonce}\n{stdin}" if taken else ""
        if callable(stdin):
            _send_stream(channel, stdin, timeout)
        elif stdin:
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
    errors = (early_err + b"".join(stderr)).decode("utf-8", "replace")
    return Result(
        connection=connection,
        command=sudo.command if sudo else command,
        stdout=(early_out + stdout).decode("utf-8", "replace"),
        stderr=sudo.cleaned(errors) if sudo else errors,
        exited=exited,
        hide=("stdout", "stderr"),
    )


class _ChannelWriter:
    """A file-like object whose writes go to a channel's stdin, SEND_BUFFER bytes at a time."""

    def __init__(self, channel) -> None:
        self.channel = channel
        self.pending = bytearray()

    def write(self, data: bytes) -> int:
        self.pending += data
        if len(self.pending) >= SEND_BUFFER:
            self.flush()
        return len(data)

    def flush(self) -> None:
        if self.pending:
            self.channel.sendall(bytes(self.pending))
            self.pending.clear()


def _send_stream(channel, produce: Producer, timeout: float | None) -> None:
    """Run ``produce`` into the channel; the command's own end (it exited, closing its stdin) is left to its
    exit status to tell, a host that takes nothing for ``timeout`` s is CommandTimeout."""
    out = _ChannelWriter(channel)
    try:
        produce(out)
        out.flush()
    except TimeoutError:
        raise CommandTimeout(f"the host took nothing for {timeout:.0f} s") from None
    except OSError:
        if not channel.closed and not channel.exit_status_ready():
            raise


def _answer_sudo(channel, sudo: SudoGate) -> tuple[bytes, bytes, bool]:
    """Send the password, then wait for root's shell: (its output after its word, sudo's stderr, whether it runs).

    On a second prompt (a wrong password) or an early exit, nothing more is
    sent: sudo ends at the end of stdin and never reads the script as another attempt.
    """
    channel.sendall(sudo.password.encode() + b"\n")
    out = err = b""
    deadline = time.monotonic() + SUDO_WAIT
    while time.monotonic() < deadline:
        if channel.recv_ready():
            out += channel.recv(65536)
            if sudo.ready in out:
                return out.split(sudo.ready, 1)[1], err, True
        elif channel.recv_stderr_ready():
            err += channel.recv_stderr(65536)
            if err.count(sudo.prompt.encode()) > 1:
                return out, err, False
        elif channel.exit_status_ready():
            return out, err, False
        else:
            time.sleep(0.01)
    raise CommandTimeout(f"sudo did not take the password within {SUDO_WAIT} s")


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
