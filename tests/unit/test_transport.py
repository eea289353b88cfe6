"""The transport over a real SSH server on loopback (tests/unit/sshserver.py): sudo with a password, host keys
of hosts and their gateways, known_hosts marker lines, uploads that stall or fall short, uploads root takes (issue 19, items 9, 10, 12).
"""

from __future__ import annotations

import os
import subprocess
import tarfile
import threading
from pathlib import Path

import paramiko
import pytest
from fabric import Config

from fabfile.engine import hostrun
from fabfile.engine.hostrun import HostRun
from fabfile.model.context import StepContext
from fabfile.model.errors import RemoteError
from fabfile.model.inventory import Host
from fabfile.model.marks import MARK
from fabfile.transport.connection import UncheckedHost, connect, run_as_root, sudo_hint, unreachable_reason
from fabfile.transport.safewrite import ROOT_UPLOADS_PREFIX, adopt_script
from tests.conftest import needs_root

from .factories import make_inventory
from .sshserver import SSHServer

PASSWORD = "s3cret pass"
# sudo as it behaves: with -S it reads the password on stdin (a line, byte by byte), up to three tries,
# prompting with -p each time; with NOPASSWD it reads nothing. Each try is logged, to see what it read.
FAKE_SUDO = """#!/bin/sh
[ "$1" = -S ] && shift
[ "$1" = -p ] && { prompt=$2; shift 2; }
if [ -z "$FAKE_NOPASSWD" ]; then
  tries=0
  while :; do
    printf '%s' "$prompt" >&2
    IFS= read -r got || { echo "sudo: no password was provided" >&2; exit 1; }
    printf '%s\\n' "$got" >> "$FAKE_SUDO_LOG"
    [ "$got" = "$FAKE_PASSWORD" ] && break
    tries=$((tries + 1))
    [ $tries -lt 3 ] || { echo "sudo: 3 incorrect password attempts" >&2; exit 1; }
    echo "Sorry, try again." >&2
  done
fi
exec "$@"
"""


@pytest.fixture
def server(tmp_path, monkeypatch):
    running = SSHServer(tmp_path)
    (running.bin / "sudo").write_text(FAKE_SUDO)
    (running.bin / "sudo").chmod(0o755)
    monkeypatch.setenv("FAKE_PASSWORD", PASSWORD)
    monkeypatch.setenv("FAKE_SUDO_LOG", str(tmp_path / "sudo.log"))
    yield running
    running.close()


def host_of(server: SSHServer, tmp_path: Path, user: str = "operator", policy: str = "strict", lines=None) -> Host:
    known = tmp_path / "known_hosts"
    known.write_text("".join(f"{line}\n" for line in (lines if lines is not None else [server.known_hosts_line])))
    return Host("node1", "127.0.0.1", user, server.port, str(server.client_key), str(known), policy)


def with_password(password: str | None) -> Config:
    return Config(overrides={"sudo": {"password": password}})


# --- item 9: sudo with a password: the script on stdin after it, never a file, never an attempt ----------


def test_with_a_password_the_script_follows_it_on_stdin_and_is_never_a_file(server, tmp_path):
    host = host_of(server, tmp_path)
    conn = connect(host, with_password(PASSWORD))
    try:
        result = run_as_root(conn, host, "echo answer $((6 * 7))\n", timeout=30)
    finally:
        conn.close()

    assert result.exited == 0 and result.stdout == "answer 42\n", result.stderr
    assert (tmp_path / "sudo.log").read_text() == f"{PASSWORD}\n"
    assert not any("answer" in command or PASSWORD in command for command in server.commands)
    assert not any(command.startswith("mktemp") for command in server.commands)
    assert server.subsystems == []  # no SFTP: nothing written as a file the login user owns


def test_a_password_sudo_does_not_ask_for_is_skipped_never_run(server, tmp_path, monkeypatch):
    monkeypatch.setenv("FAKE_NOPASSWD", "1")
    planted = tmp_path / "ran"
    host = host_of(server, tmp_path)
    conn = connect(host, with_password(f"touch {planted}"))
    try:
        result = run_as_root(conn, host, "echo ran the script\n", timeout=30)
    finally:
        conn.close()

    assert result.exited == 0 and result.stdout == "ran the script\n"
    assert not planted.exists()


def test_a_wrong_password_ends_sudo_and_the_script_is_never_read_as_an_attempt(server, tmp_path):
    host = host_of(server, tmp_path)
    conn = connect(host, with_password("wrong"))
    try:
        result = run_as_root(conn, host, "echo never\necho seen\n", timeout=30)
    finally:
        conn.close()

    assert result.exited == 1 and "never" not in result.stdout
    assert (tmp_path / "sudo.log").read_text() == "wrong\n"
    assert sudo_hint(result) == "sudo refused the password given with --prompt-for-sudo-password"
    assert "kolla-registry-password-" not in result.stderr


def test_host_key_policy_off_with_a_sudo_password_is_refused_before_connecting(server, tmp_path):
    host = host_of(server, tmp_path, policy="off")

    with pytest.raises(UncheckedHost) as caught:
        connect(host, with_password(PASSWORD))

    assert unreachable_reason(caught.value, host) == (
        "operator@127.0.0.1: host_key_policy off with a sudo password: refused "
        "(the password would go to whoever answers there; use accept-new or strict)"
    )
    assert server.commands == [] and server.transports == []


# --- item 9: a ProxyJump gateway's key is checked like the host's --------------------------------------


def gateway_config(server: SSHServer) -> Config:
    ssh_config = paramiko.SSHConfig.from_text(f"Host node1.internal\n  ProxyJump operator@127.0.0.1:{server.port}\n")
    return Config(ssh_config=ssh_config)


@pytest.mark.parametrize("policy", ["strict", "accept-new"])
def test_a_gateway_with_an_unknown_or_changed_key_is_refused(server, tmp_path, policy):
    other = paramiko.RSAKey.generate(2048)
    lines = [] if policy == "strict" else [f"[127.0.0.1]:{server.port} ssh-rsa {other.get_base64()}"]
    known = host_of(server, tmp_path, policy=policy, lines=lines).known_hosts
    host = Host("node1", "node1.internal", "root", 22, str(server.client_key), known, policy)
    conn = connect(host, gateway_config(server))

    with pytest.raises(paramiko.SSHException) as caught:
        conn.open()

    reason = unreachable_reason(caught.value, host)
    expected = (
        f"unknown host key for the gateway [127.0.0.1]:{server.port} (not in {known}"
        if policy == "strict"
        else "host key of the gateway 127.0.0.1 has CHANGED"
    )
    assert reason.startswith(expected), reason
    assert server.commands == []


# --- item 12: known_hosts marker lines ---------------------------------------------------------------


def test_a_cert_authority_line_is_skipped_and_explained_when_the_host_is_unknown(server, tmp_path):
    authority = paramiko.RSAKey.generate(2048)
    host = host_of(server, tmp_path, lines=[f"@cert-authority *.internal ssh-rsa {authority.get_base64()}"])
    conn = connect(host)

    with pytest.raises(paramiko.SSHException) as caught:
        conn.open()

    assert unreachable_reason(caught.value, host) == (
        f"unknown host key for operator@127.0.0.1:{server.port} (not in {host.known_hosts}; host_key_policy strict): "
        "refused (its 1 @cert-authority line(s) are not used: host certificates are not checked; add the host's own key)"
    )


def test_a_known_host_still_connects_with_marker_lines_around_it(server, tmp_path):
    authority = paramiko.RSAKey.generate(2048)
    lines = [
        f"@cert-authority *.internal ssh-rsa {authority.get_base64()}",
        f"@revoked * ssh-rsa {authority.get_base64()}",
        server.known_hosts_line,
    ]
    host = host_of(server, tmp_path, user="root", lines=lines)
    conn = connect(host)
    try:
        assert run_as_root(conn, host, "echo in\n", timeout=30).stdout == "in\n"
    finally:
        conn.close()


@pytest.mark.parametrize("policy", ["strict", "accept-new"])
def test_a_revoked_key_is_refused_even_where_another_line_lists_it(server, tmp_path, policy):
    lines = [f"@revoked * {server.key.get_name()} {server.key.get_base64()}", server.known_hosts_line]
    host = host_of(server, tmp_path, policy=policy, lines=lines)
    conn = connect(host)

    with pytest.raises(paramiko.SSHException) as caught:
        conn.open()

    reason = unreachable_reason(caught.value, host)
    assert reason.startswith(f"host key of operator@127.0.0.1:{server.port} (SHA256:") and "is @revoked in" in reason
    assert Path(host.known_hosts).read_text().splitlines() == lines  # accept-new saved nothing


def test_a_line_that_is_no_host_key_is_named_with_its_number(tmp_path):
    known = tmp_path / "known_hosts"
    known.write_text("# comment\n192.0.2.11 ssh-ed25519 not-base64!\n")
    host = Host("node1", "192.0.2.11", known_hosts=str(known), host_key_policy="strict")

    with pytest.raises(Exception) as caught:
        connect(host)

    assert unreachable_reason(caught.value, host) == f"{known}: line 2: not a known_hosts line (InvalidHostKey)"


# --- item 10: upload waits are bounded; an upload the host did not write whole fails --------------------


def upload_in_thread(run: HostRun, local: Path, name: str) -> list[BaseException | str]:
    """``run.upload`` in a thread given 30 s: what it returned or raised (nothing if it still waits)."""
    outcome: list[BaseException | str] = []

    def upload() -> None:
        try:
            outcome.append(run.upload(str(local), name))
        except BaseException as error:  # noqa: BLE001 - the test reads what came out
            outcome.append(error)

    worker = threading.Thread(target=upload, daemon=True)
    worker.start()
    worker.join(30)
    inbox = run.inbox
    run.connection.close()
    if inbox.startswith(hostrun.UPLOAD_PREFIX):
        subprocess.run(["rm", "-rf", inbox], check=False)
    return outcome


def upload_to_cat(server: SSHServer, tmp_path: Path, cat: str, size: int) -> tuple[Path, list[BaseException | str]]:
    """An upload of ``size`` random bytes to the server, whose ``cat`` is the shell ``cat``: the file and the outcome."""
    (server.bin / "cat").write_text(f"#!/bin/sh\n{cat}\n")
    (server.bin / "cat").chmod(0o755)
    archive = tmp_path / "registry.tar"
    archive.write_bytes(os.urandom(size))
    run = HostRun(host_of(server, tmp_path, user="root"), StepContext(make_inventory()))
    return archive, upload_in_thread(run, archive, "registry.tar")


def test_an_upload_to_a_host_that_takes_none_of_it_fails_in_time(server, tmp_path, monkeypatch):
    monkeypatch.setattr(hostrun, "UPLOAD_TIMEOUT", 2)
    # A cat that never reads: the SSH window (2 MiB) fills, then nothing more can go.
    archive, outcome = upload_to_cat(server, tmp_path, "exec sleep 60", 8 << 20)

    assert outcome, "the upload waited on the stalled host for more than 30 s"
    assert isinstance(outcome[0], RemoteError)
    assert str(outcome[0]) == f"upload of {archive} stalled: the host answered nothing for 2 s"


def test_an_upload_the_host_could_not_write_whole_fails_with_its_words(server, tmp_path):
    # A disk that fills: cat writes part of its input, says why, and fails.
    said = "head -c 1000 > /dev/null; echo 'cat: write error: No space left on device' >&2; exit 1"
    archive, outcome = upload_to_cat(server, tmp_path, said, 3 << 20)

    assert isinstance(outcome[0], RemoteError)
    assert str(outcome[0]) == f"upload of {archive} failed: cat: write error: No space left on device"


def test_a_folder_is_uploaded_as_a_tar_of_its_files_every_byte_there(server, tmp_path):
    folder = tmp_path / "bundle"
    (folder / "blobs" / "sha256").mkdir(parents=True)
    (folder / "index.json").write_text("{}")
    blob = os.urandom(5 << 20)
    (folder / "blobs" / "sha256" / "ab").write_bytes(blob)
    run = HostRun(host_of(server, tmp_path, user="root"), StepContext(make_inventory()))
    try:
        remote = run.upload(str(folder), "images.tar")
        with tarfile.open(remote) as archive:
            names = sorted(archive.getnames())
            held = archive.extractfile("blobs/sha256/ab").read()
    finally:
        run.close()

    assert names == ["blobs", "blobs/sha256", "blobs/sha256/ab", "index.json"]
    assert held == blob
    assert server.subsystems == []  # no SFTP


# --- item 9: root takes an upload into its own folder before reading it --------------------------------


@pytest.fixture
def inbox(tmp_path) -> Path:
    """The login user's upload folder (here nobody's), as SFTP leaves it."""
    needs_root()
    folder = Path(subprocess.run(["mktemp", "-d", "/tmp/kolla-registry.XXXXXXXX"], capture_output=True, text=True, check=True).stdout.strip())
    os.chown(folder, 65534, 65534)
    yield folder
    subprocess.run(["rm", "-rf", str(folder)], check=False)


def adopt(inbox: Path, name: str, folder: str = "") -> subprocess.CompletedProcess:
    return subprocess.run(["sh", "-c", adopt_script(str(inbox), name, folder)], capture_output=True, text=True, check=False)


def test_an_upload_is_moved_into_roots_own_folder_and_made_roots(inbox):
    (inbox / "registry.tar").write_bytes(b"layers")
    os.chown(inbox / "registry.tar", 65534, 65534)

    result = adopt(inbox, "registry.tar")

    assert result.returncode == 0, result.stdout + result.stderr
    folder = Path(result.stdout.split(f"{MARK} uploads ")[1].strip())
    try:
        assert str(folder).startswith(ROOT_UPLOADS_PREFIX)
        info, mode = (folder / "registry.tar").stat(), oct((folder / "registry.tar").stat().st_mode & 0o777)
        assert (info.st_uid, mode, (folder / "registry.tar").read_bytes()) == (0, "0o600", b"layers")
        assert (folder.stat().st_uid, folder.stat().st_mode & 0o777) == (0, 0o700)
        assert not (inbox / "registry.tar").exists()
    finally:
        subprocess.run(["rm", "-rf", str(folder)], check=False)


def test_a_link_swapped_in_for_an_upload_is_refused_and_never_read(inbox, tmp_path):
    victim = tmp_path / "shadow"
    victim.write_text("root:hash\n")
    (inbox / "registry.tar").symlink_to(victim)
    os.lchown(inbox / "registry.tar", 65534, 65534)

    result = adopt(inbox, "registry.tar")

    assert result.returncode == 1
    assert f"{MARK} fail upload registry.tar: not a regular file of its own (a link?): refused" in result.stdout
    assert victim.read_text() == "root:hash\n" and victim.stat().st_uid == 0
    for leftover in Path("/tmp").glob("kolla-registry-root.*"):
        assert not (leftover / "registry.tar").exists()
