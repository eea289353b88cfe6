"""Host keys: known_hosts files, OpenSSH's accept-new, fingerprints."""

from __future__ import annotations

import base64
import functools
import hashlib
import os
import threading

import paramiko

from ..model.inventory import Host

USER_KNOWN_HOSTS = "~/.ssh/known_hosts"


def checking_client(host: Host) -> paramiko.SSHClient:
    """An SSH client that checks ``host``'s key as its policy says (accept-new or strict)."""
    path = known_hosts_path(host)
    accept_new = host.host_key_policy == "accept-new"
    client = paramiko.SSHClient()
    client.get_host_keys().update(known_hosts(path, missing_ok=accept_new))
    client.set_missing_host_key_policy(SaveNewKey(path) if accept_new else paramiko.RejectPolicy())
    return client


def known_hosts_path(host: Host) -> str:
    return os.path.expanduser(host.known_hosts or USER_KNOWN_HOSTS)


class SaveNewKey(paramiko.MissingHostKeyPolicy):
    """An unknown host's key is accepted and saved to the known_hosts file; a changed one never is."""

    _lock = threading.Lock()

    def __init__(self, path: str) -> None:
        self.path = path

    def missing_host_key(self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey) -> None:
        with self._lock:
            os.makedirs(os.path.dirname(self.path) or ".", mode=0o700, exist_ok=True)
            with open(self.path, "a", encoding="ascii") as saved:
                saved.write(f"{hostname} {key.get_name()} {key.get_base64()}\n")
        client.get_host_keys().add(hostname, key.get_name(), key)


def fingerprint(key: paramiko.PKey) -> str:
    """The key's fingerprint as OpenSSH shows it (``SHA256:...``)."""
    return "SHA256:" + base64.b64encode(hashlib.sha256(key.asbytes()).digest()).decode().rstrip("=")


def known_hosts(path: str, missing_ok: bool = False) -> paramiko.HostKeys:
    """The host keys in ``path``, parsed once per version of the file.

    Parsing builds a key object per line: for twenty hosts, each connection
    parsing the whole file again cost more CPU than its own handshake.
    """
    try:
        stat = os.stat(path)
    except FileNotFoundError:
        if missing_ok:
            return paramiko.HostKeys()
        raise HostKeyFileError(f"{path}: cannot read: No such file or directory") from None
    except OSError as error:
        raise HostKeyFileError(f"{path}: cannot read: {error.strerror}") from None
    return _parsed_host_keys(path, stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=16)
def _parsed_host_keys(path: str, mtime_ns: int, size: int) -> paramiko.HostKeys:
    keys = paramiko.HostKeys()
    try:
        keys.load(path)
    except OSError as error:
        raise HostKeyFileError(f"{path}: cannot read: {error.strerror}") from None
    return keys


class HostKeyFileError(Exception):
    """The inventory's known_hosts file cannot be read."""
