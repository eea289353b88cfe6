"""A real SSH server on loopback, in this process (paramiko), for the transport's tests: no lab, no mocks.

It accepts any public key, runs each exec request with ``sh -c`` on this
machine (its own ``PATH`` first, so a test can put stand-ins such as a fake
``sudo`` there), and records every command line it was asked to run. Its SFTP
subsystem is accepted but never answers: a host whose SFTP stalls.
"""

from __future__ import annotations

import os
import socket
import subprocess
import threading
from pathlib import Path

import paramiko


class _Server(paramiko.ServerInterface):
    def __init__(self, owner: SSHServer) -> None:
        self.owner = owner

    def get_allowed_auths(self, username: str) -> str:
        return "publickey"

    def check_auth_publickey(self, username: str, key: paramiko.PKey) -> int:
        return paramiko.AUTH_SUCCESSFUL

    def check_channel_request(self, kind: str, chanid: int) -> int:
        return paramiko.OPEN_SUCCEEDED if kind == "session" else paramiko.OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED

    def check_channel_exec_request(self, channel: paramiko.Channel, command: bytes) -> bool:
        self.owner.commands.append(command.decode())
        threading.Thread(target=self.owner.run, args=(channel, command.decode()), daemon=True).start()
        return True

    def check_channel_subsystem_request(self, channel: paramiko.Channel, name: str) -> bool:
        self.owner.subsystems.append(name)
        return True  # and never a word: a stalled SFTP server


class SSHServer:
    """Listens on 127.0.0.1; ``key`` is its host key, ``client_key`` a key file any test may log in with."""

    def __init__(self, folder: Path) -> None:
        self.key = paramiko.RSAKey.generate(2048)
        self.client_key = folder / "client_key"
        paramiko.RSAKey.generate(2048).write_private_key_file(str(self.client_key))
        self.bin = folder / "bin"
        self.bin.mkdir(exist_ok=True)
        self.commands: list[str] = []
        self.subsystems: list[str] = []
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(8)
        self.port = self.listener.getsockname()[1]
        self.transports: list[paramiko.Transport] = []
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def known_hosts_line(self) -> str:
        return f"[127.0.0.1]:{self.port} {self.key.get_name()} {self.key.get_base64()}"

    def _accept(self) -> None:
        while True:
            try:
                sock, _ = self.listener.accept()
            except OSError:
                return
            transport = paramiko.Transport(sock)
            transport.add_server_key(self.key)
            self.transports.append(transport)
            try:
                transport.start_server(server=_Server(self))
            except (paramiko.SSHException, EOFError):
                continue

    def run(self, channel: paramiko.Channel, command: str) -> None:
        env = {**os.environ, "PATH": f"{self.bin}:{os.environ['PATH']}"}
        with subprocess.Popen(
            ["sh", "-c", command], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
        ) as process:
            threading.Thread(target=_pump_in, args=(channel, process.stdin), daemon=True).start()
            errors = threading.Thread(target=_pump_out, args=(process.stderr, channel.sendall_stderr), daemon=True)
            errors.start()
            _pump_out(process.stdout, channel.sendall)
            errors.join()
            channel.send_exit_status(process.wait())
        channel.close()

    def close(self) -> None:
        self.listener.close()
        for transport in self.transports:
            transport.close()


def _pump_in(channel: paramiko.Channel, stdin) -> None:
    try:
        while data := channel.recv(65536):
            stdin.write(data)
            stdin.flush()
    except (OSError, ValueError):
        pass
    finally:
        try:
            stdin.close()
        except OSError:
            pass


def _pump_out(stream, send) -> None:
    while data := stream.read1(65536):
        try:
            send(data)
        except OSError:
            return
