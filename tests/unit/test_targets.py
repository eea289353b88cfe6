"""configure-targets' own pieces: the targets' facts script and what it verified; host keys; sockets."""

from __future__ import annotations

import socket
import subprocess
from dataclasses import replace

import paramiko
import pytest

from fabfile.engines.docker.verify import quick_verify_script as verify_script
from fabfile.facts.base import parse, script
from fabfile.model.context import Modes
from fabfile.model.marks import MARK
from fabfile.tasks.targets import target_sections
from fabfile.transport import connection, hostkeys

from .factories import REGISTRY, make_ctx

SERVER = "20.10.24+dfsg1"
HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"


def run_script(script: str, tmp_path, curl_output: str) -> str:
    """The script under sh, with stand-ins for curl, systemctl and docker that give canned answers."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    (bin_dir / "curl").write_text(f"#!/bin/sh\ncat <<'EOF'\n{curl_output}\nEOF\n")
    (bin_dir / "systemctl").write_text("#!/bin/sh\necho ActiveState=active\n")
    (bin_dir / "docker").write_text(
        "#!/bin/sh\necho 'Error response from daemon: manifest unknown' >&2\nexit 1\n"
    )
    for tool in bin_dir.iterdir():
        tool.chmod(0o755)
    done = subprocess.run(
        ["sh", "-c", script],
        env={"PATH": f"{bin_dir}:/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=False,
    )
    return done.stdout


PING = f"HTTP/1.1 200 OK\r\nApi-Version: 1.41\r\nServer: Docker/{SERVER} (linux)\r\n\r\n"
REGISTRY_HEADERS = "HTTP/1.1 200 OK\r\nDocker-Distribution-Api-Version: registry/2.0\r\n\r\n"
PULLED = '{"status":"Digest: sha256:ab"}\r\n{"status":"Status: Image is up to date for x"}'


def facts_script(ctx, verify: bool) -> str:
    return script(sections(ctx, verify))


def sections(ctx, verify: bool):
    return target_sections(replace(ctx, modes=Modes(check=not verify)))


def verification(output: str):
    return parse(output, sections(make_ctx(), True)).verified


def test_the_engine_version_comes_from_the_api_ping(tmp_path):
    facts = parse(run_script(facts_script(make_ctx(), verify=False), tmp_path, PING), sections(make_ctx(), False))
    assert facts.docker_version == SERVER
    assert facts.unit["ActiveState"] == "active"


def test_no_verification_where_the_registry_is_not_named(tmp_path):
    output = run_script(facts_script(make_ctx(), verify=True), tmp_path, PING)
    assert verification(output) is None


def test_check_mode_never_verifies():
    assert "check=yes" not in facts_script(make_ctx(), verify=False)
    assert "check=yes" in facts_script(make_ctx(), verify=True)


def test_a_passed_check_reads_as_pulled(tmp_path):
    output = run_script(verify_script(make_ctx()), tmp_path, REGISTRY_HEADERS + PULLED)
    assert output.splitlines()[-1] == f"{MARK} pulled {make_ctx().probe_image}"


def test_a_failed_pull_falls_back_to_the_docker_cli_and_its_words(tmp_path):
    failed = REGISTRY_HEADERS + '{"errorDetail":{"message":"x"},"error":"manifest unknown"}'
    output = run_script(verify_script(make_ctx()), tmp_path, failed)
    probe = make_ctx().probe_image
    assert output.splitlines()[-1] == (
        f"{MARK} fail docker pull {probe}: Error response from daemon: manifest unknown"
    )


def test_verification_is_parsed_from_the_facts_output():
    output = f"{MARK} docker-server\n{SERVER}\n{MARK} {'verify'}\n{MARK} fail docker pull x: denied\n{MARK} verified\n1\n"
    assert verification(output) == (1, f"{MARK} fail docker pull x: denied")
    assert verification(f"{MARK} docker-server\n{SERVER}\n") is None


def test_the_registry_is_matched_literally():
    assert f"*{REGISTRY}*" in facts_script(make_ctx(), verify=True)


def test_known_hosts_are_parsed_once_per_version(tmp_path):
    path = tmp_path / "known_hosts"
    path.write_text(f"192.0.2.11 {HOST_KEY}\n")
    first = hostkeys.known_hosts(str(path))
    assert hostkeys.known_hosts(str(path)) is first
    assert first.lookup("192.0.2.11") is not None
    path.write_text("")
    assert hostkeys.known_hosts(str(path)) is not first


def test_an_unreadable_known_hosts_is_named(tmp_path):
    with pytest.raises(hostkeys.HostKeyFileError, match="known_hosts: cannot read"):
        hostkeys.known_hosts(str(tmp_path / "known_hosts"))


def test_a_refused_port_fails_as_paramiko_reports_it():
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        port = listener.getsockname()[1]
    with pytest.raises(paramiko.ssh_exception.NoValidConnectionsError):
        connection.nodelay_socket("127.0.0.1", port, 2)


def test_sockets_send_at_once():
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        sock = connection.nodelay_socket("127.0.0.1", listener.getsockname()[1], 2)
        with sock:
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)


def test_accept_new_saves_an_unknown_hosts_key_and_checks_it_after(tmp_path):
    path = tmp_path / "ssh" / "known_hosts"
    key = paramiko.RSAKey.generate(1024)
    client = paramiko.SSHClient()

    hostkeys.SaveNewKey(str(path)).missing_host_key(client, "[192.0.2.11]:2222", key)

    assert path.read_text() == f"[192.0.2.11]:2222 ssh-rsa {key.get_base64()}\n"
    assert hostkeys.known_hosts(str(path)).lookup("[192.0.2.11]:2222")["ssh-rsa"] == key
    assert client.get_host_keys().lookup("[192.0.2.11]:2222") is not None


def test_a_missing_known_hosts_is_empty_for_accept_new_and_an_error_for_strict(tmp_path):
    assert len(hostkeys.known_hosts(str(tmp_path / "none"), missing_ok=True)) == 0
    with pytest.raises(hostkeys.HostKeyFileError):
        hostkeys.known_hosts(str(tmp_path / "none"))


def test_fingerprints_read_as_openssh_shows_them(tmp_path):
    key = paramiko.RSAKey.generate(1024)
    (tmp_path / "key.pub").write_text(f"ssh-rsa {key.get_base64()}\n")
    shown = subprocess.run(
        ["ssh-keygen", "-lf", str(tmp_path / "key.pub")], capture_output=True, text=True, check=True
    ).stdout

    assert hostkeys.fingerprint(key) == shown.split()[1]
