"""Host keys: known_hosts files, OpenSSH's accept-new, fingerprints.

A known_hosts file may hold OpenSSH's marker lines. ``@revoked`` keys are
refused for every host, even where another line lists them. ``@cert-authority``
lines are skipped (paramiko checks no host certificates): a host known only
through one is unknown here, and its row says so.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import os
import threading
from dataclasses import dataclass

import paramiko
from paramiko.hostkeys import HostKeyEntry, InvalidHostKey

from ..model.inventory import Host

USER_KNOWN_HOSTS = "~/.ssh/known_hosts"


def checking_client(host: Host) -> paramiko.SSHClient:
    """An SSH client that checks ``host``'s key as its policy says (accept-new or strict)."""
    path = known_hosts_path(host)
    accept_new = host.host_key_policy == "accept-new"
    found = known_hosts_file(path, missing_ok=accept_new)
    client = paramiko.SSHClient()
    # Only this host's lines: copying the whole file into every client cost more CPU than the handshake.
    client.get_host_keys().update(found.keys_for(server_name(host)))
    client.set_missing_host_key_policy(SaveNewKey(path, found.revoked) if accept_new else RefuseUnknown(found.revoked))
    return client


def server_name(host: Host) -> str:
    """The name paramiko looks ``host`` up by in known_hosts: its address, or ``[address]:port``."""
    return host.address if host.port == 22 else f"[{host.address}]:{host.port}"


def known_hosts_path(host: Host) -> str:
    return os.path.expanduser(host.known_hosts or USER_KNOWN_HOSTS)


class RevokedHostKey(paramiko.SSHException):
    """The host showed a key a ``@revoked`` line of known_hosts names."""

    def __init__(self, hostname: str, key: paramiko.PKey) -> None:
        super().__init__(f"host key {fingerprint(key)} of {hostname} is @revoked in known_hosts")
        self.hostname, self.key = hostname, key


class UnknownHostKey(paramiko.SSHException):
    """strict: the host's key is in no line of known_hosts."""

    def __init__(self, hostname: str) -> None:
        super().__init__(f"Server {hostname!r} not found in known_hosts")
        self.hostname = hostname


class RefuseUnknown(paramiko.MissingHostKeyPolicy):
    """strict: an unknown host's key is refused; a revoked one too."""

    def __init__(self, revoked: frozenset[tuple[str, str]] = frozenset()) -> None:
        self.revoked = revoked

    def missing_host_key(self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey) -> None:
        if (key.get_name(), key.get_base64()) in self.revoked:
            raise RevokedHostKey(hostname, key)
        raise UnknownHostKey(hostname)


class SaveNewKey(RefuseUnknown):
    """An unknown host's key is accepted and saved to the known_hosts file; a changed or revoked one never is."""

    _lock = threading.Lock()

    def __init__(self, path: str, revoked: frozenset[tuple[str, str]] = frozenset()) -> None:
        super().__init__(revoked)
        self.path = path

    def missing_host_key(self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey) -> None:
        if (key.get_name(), key.get_base64()) in self.revoked:
            raise RevokedHostKey(hostname, key)
        with self._lock:
            os.makedirs(os.path.dirname(self.path) or ".", mode=0o700, exist_ok=True)
            with open(self.path, "a", encoding="ascii") as saved:
                saved.write(f"{hostname} {key.get_name()} {key.get_base64()}\n")
        client.get_host_keys().add(hostname, key.get_name(), key)


def fingerprint(key: paramiko.PKey) -> str:
    """The key's fingerprint as OpenSSH shows it (``SHA256:...``)."""
    return "SHA256:" + base64.b64encode(hashlib.sha256(key.asbytes()).digest()).decode().rstrip("=")


@dataclass(frozen=True)
class KnownHosts:
    """A known_hosts file: its host keys (none of them revoked), its revoked keys, its skipped CA lines."""

    keys: paramiko.HostKeys
    revoked: frozenset[tuple[str, str]] = frozenset()
    authorities: int = 0

    def keys_for(self, name: str) -> paramiko.HostKeys:
        """The keys of the lines that name ``name`` (plainly or hashed), as their own HostKeys."""
        found = paramiko.HostKeys()
        for key_type, key in (self.keys.lookup(name) or {}).items():
            found.add(name, key_type, key)
        return found


def known_hosts(path: str, missing_ok: bool = False) -> paramiko.HostKeys:
    """The host keys in ``path`` (see ``known_hosts_file``)."""
    return known_hosts_file(path, missing_ok).keys


def known_hosts_file(path: str, missing_ok: bool = False) -> KnownHosts:
    """The file at ``path``, parsed once per version of the file.

    Parsing builds a key object per line: for twenty hosts, each connection
    parsing the whole file again cost more CPU than its own handshake.
    """
    try:
        stat = os.stat(path)
    except FileNotFoundError:
        if missing_ok:
            return KnownHosts(paramiko.HostKeys())
        raise HostKeyFileError(f"{path}: cannot read: No such file or directory") from None
    except OSError as error:
        raise HostKeyFileError(f"{path}: cannot read: {error.strerror}") from None
    # One parse for every host of a run: without the lock, a hundred threads starting at once all
    # missed the cache together and each parsed the whole file (paramiko takes its logging lock per line).
    with _PARSING:
        return _parsed(path, stat.st_mtime_ns, stat.st_size)


_PARSING = threading.Lock()


@functools.lru_cache(maxsize=16)
def _parsed(path: str, mtime_ns: int, size: int) -> KnownHosts:
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            lines = handle.read().splitlines()
    except OSError as error:
        raise HostKeyFileError(f"{path}: cannot read: {error.strerror}") from None
    entries, revoked, authorities = [], set(), 0
    for number, line in enumerate(lines, 1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        marker, rest = (*text.split(None, 1), "")[:2] if text.startswith("@") else ("", text)
        if marker and marker != "@revoked":
            authorities += 1
            continue
        entry = _entry(path, number, rest.strip())
        if entry and marker:
            revoked.add((entry.key.get_name(), entry.key.get_base64()))
        elif entry:
            entries.append(entry)
    keys = paramiko.HostKeys()
    for entry in entries:
        if (entry.key.get_name(), entry.key.get_base64()) not in revoked:
            for name in entry.hostnames:
                keys.add(name, entry.key.get_name(), entry.key)
    return KnownHosts(keys, frozenset(revoked), authorities)


def _entry(path: str, number: int, text: str) -> HostKeyEntry | None:
    """One line's names and key; None for a key type paramiko does not know (OpenSSH's newer types)."""
    try:
        return HostKeyEntry.from_line(text, number)
    except (InvalidHostKey, paramiko.SSHException, ValueError) as error:
        raise HostKeyFileError(f"{path}: line {number}: not a known_hosts line ({type(error).__name__})") from None


class HostKeyFileError(Exception):
    """The inventory's known_hosts file cannot be read."""
