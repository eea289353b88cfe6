"""known_hosts at a hundred hosts: parsed once per run, and each client holds only its host's lines."""

from __future__ import annotations

import threading

import paramiko
import pytest

from fabfile.model.inventory import Host
from fabfile.transport import hostkeys
from fabfile.transport.connection import connect, run_as_root, unreachable_reason

from .sshserver import SSHServer


@pytest.fixture
def server(tmp_path):
    running = SSHServer(tmp_path)
    yield running
    running.close()


def many_lines(count: int) -> list[str]:
    """``count`` other hosts' lines (one key reused: only the names matter here)."""
    key = paramiko.RSAKey.generate(1024)
    return [f"198.51.100.{i % 250}{'' if i < 250 else f'-{i}'} ssh-rsa {key.get_base64()}" for i in range(count)]


def host_for(server: SSHServer, known: str, user: str = "root") -> Host:
    return Host("node1", "127.0.0.1", user, server.port, str(server.client_key), known, "strict")


def test_a_client_holds_only_its_hosts_lines(server, tmp_path):
    known = tmp_path / "known_hosts"
    known.write_text("\n".join([*many_lines(300), server.known_hosts_line]) + "\n")
    host = host_for(server, str(known))

    client = hostkeys.checking_client(host)

    assert list(client.get_host_keys().keys()) == [hostkeys.server_name(host)]
    conn = connect(host)
    try:
        assert run_as_root(conn, host, "echo in\n", timeout=30).stdout == "in\n"
    finally:
        conn.close()


def test_a_host_known_by_a_hashed_line_still_connects(server, tmp_path):
    name = f"[127.0.0.1]:{server.port}"
    hashed = paramiko.HostKeys.hash_host(name)
    known = tmp_path / "known_hosts"
    known.write_text("\n".join([*many_lines(20), f"{hashed} {server.key.get_name()} {server.key.get_base64()}"]) + "\n")
    host = host_for(server, str(known))

    conn = connect(host)
    try:
        assert run_as_root(conn, host, "echo in\n", timeout=30).stdout == "in\n"
    finally:
        conn.close()


def test_a_changed_key_among_many_lines_is_still_refused(server, tmp_path):
    known = tmp_path / "known_hosts"
    changed = type(server.key).generate(1024)  # same type, another key
    name = f"[127.0.0.1]:{server.port}"
    known.write_text("\n".join([*many_lines(50), f"{name} {server.key.get_name()} {changed.get_base64()}"]) + "\n")
    host = host_for(server, str(known))
    conn = connect(host)

    with pytest.raises(paramiko.BadHostKeyException) as caught:
        conn.open()

    assert "has CHANGED" in unreachable_reason(caught.value, host)


def test_a_hundred_hosts_starting_at_once_parse_the_file_once(tmp_path):
    known = tmp_path / "known_hosts"
    known.write_text("\n".join(many_lines(300)) + "\n")
    hostkeys._parsed.cache_clear()
    start = threading.Barrier(100)

    def one() -> None:
        start.wait()
        hostkeys.known_hosts_file(str(known))

    threads = [threading.Thread(target=one) for _ in range(100)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert hostkeys._parsed.cache_info().misses == 1
