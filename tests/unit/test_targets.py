"""configure-targets' own pieces: the targets' facts script and what it verified; a node's row through the
engine; host keys; sockets."""

from __future__ import annotations

import base64
import json
import socket
import subprocess
from dataclasses import replace

import paramiko
import pytest

from fabfile.actions.targets import ConfigureTargets
from fabfile.engines.docker.facts import VERSION_FROM_PING
from fabfile.engines.docker.paths import DAEMON_JSON, ca_path
from fabfile.engines.docker.verify import _judge, _resolve_curl
from fabfile.engines.docker.verify import quick_verify_script as verify_script
from fabfile.engines.shell import in_turn
from fabfile.facts.base import parse, script
from fabfile.model.context import Limits, Modes
from fabfile.model.errors import RemoteError
from fabfile.model.marks import MARK
from fabfile.model.outcome import CHANGED, FAILED, OK
from fabfile.registry.reach import ENGINE_VERIFIED, tls_check, tls_verified
from fabfile.transport import connection, hostkeys
from fabfile.transport.apply import handler_script

from .factories import REGISTRY, docker_host, make_ctx, run_on_host

SERVER = "20.10.24+dfsg1"
CA = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"


def run_script(script: str, tmp_path, curl_output: str) -> str:
    """The script under sh, with stand-ins for curl, systemctl and docker that give canned answers."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    (bin_dir / "curl").write_text(f"#!/bin/sh\nprintf '%s\\n' \"$*\" >> {bin_dir}/curl.calls\ncat <<'EOF'\n{curl_output}\nEOF\n")
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
    return ConfigureTargets().sections(replace(ctx, modes=Modes(check=not verify)))


def verification(output: str):
    return parse(output, sections(make_ctx(), True)).engine("docker").checked


def test_the_engine_version_comes_from_the_api_ping(tmp_path):
    facts = parse(run_script(facts_script(make_ctx(), verify=False), tmp_path, PING), sections(make_ctx(), False))
    assert facts.engine("docker").version == SERVER
    assert facts.engine("docker").service["ActiveState"] == "active"


def test_no_verification_where_the_registry_is_not_named(tmp_path):
    output = run_script(facts_script(make_ctx(), verify=True), tmp_path, PING)
    assert verification(output) is None


def test_check_mode_never_verifies():
    assert "check=yes" not in facts_script(make_ctx(), verify=False)
    assert "check=yes" in facts_script(make_ctx(), verify=True)


RESOLVED = (
    '{"Descriptor":{"mediaType":"application/vnd.docker.distribution.manifest.v2+json",'
    '"digest":"sha256:ab","size":528},"Platforms":[{"architecture":"amd64","os":"linux"}]}'
)


@pytest.mark.parametrize("settings", [{}, {"tls": "self-signed", "auth": "htpasswd"}], ids=["plain", "tls-login"])
def test_the_facts_session_resolves_the_probe_through_dockerd_and_downloads_nothing(settings):
    ctx = replace(make_ctx(settings), password="pw", ca=CA)
    shell = facts_script(ctx, verify=True)

    assert f"http://docker/distribution/{ctx.probe_image}/json" in shell
    assert "images/create" not in shell.split("then ( ")[0]  # the pull only in the fallback full check


def test_a_resolved_probe_reads_as_resolved_and_a_failed_one_falls_back_to_the_full_pull(tmp_path):
    ctx = make_ctx()

    resolved = run_script(f"out=$(curl); {_judge(ctx, pull=False)}", tmp_path, REGISTRY_HEADERS + RESOLVED)
    assert resolved.splitlines()[-1] == f"{MARK} resolved {ctx.probe_image}"
    failed = '{"message":"manifest unknown"}'
    fallen = run_script(f"out=$(curl); {_judge(ctx, pull=False)}", tmp_path, REGISTRY_HEADERS + failed)
    assert fallen.splitlines()[-1] == f"{MARK} fail docker pull {ctx.probe_image}: Error response from daemon: manifest unknown"



# What Go's registry sends over TLS: HTTP/2, whose header names are lower case.
HTTP2_HEADERS = "HTTP/2 401 \r\ncontent-type: application/json\r\ndocker-distribution-api-version: registry/2.0\r\n\r\n"


def test_over_tls_the_lower_case_http2_headers_still_lead_to_the_pull_with_the_login(tmp_path):
    ctx = replace(make_ctx({"tls": "self-signed", "auth": "htpasswd"}), password="pw", ca=CA)

    output = run_script(verify_script(ctx), tmp_path, HTTP2_HEADERS + PULLED)

    assert output.splitlines()[-1] == f"{MARK} pulled {ctx.probe_image}"
    calls = (tmp_path / "bin" / "curl.calls").read_text().splitlines()
    assert len(calls) == 2 and "images/create" in calls[1]


def test_a_probe_resolved_over_tls_is_the_tls_proof_with_no_handshake_of_our_own(tmp_path):
    ctx = replace(make_ctx({"tls": "self-signed", "auth": "htpasswd"}), password="pw", ca=CA)
    ca_file = tmp_path / "ca.crt"
    ca_file.write_text(CA)
    reach = tls_check(ctx, [str(ca_file)])
    engine_check = f"{_resolve_curl(ctx)}\n{_judge(ctx, pull=False)}"

    output = run_script(script([reach]).replace("s registry-tls", f"{engine_check}\ns registry-tls"), tmp_path, PING + RESOLVED)

    facts = parse(output, [reach])
    assert tls_verified(facts) and facts.reach.tls == ENGINE_VERIFIED
    [call] = (tmp_path / "bin" / "curl.calls").read_text().splitlines()
    assert "--cacert" not in call and f"http://docker/distribution/{ctx.probe_image}/json" in call


@pytest.mark.parametrize("settings", [{}, {"tls": "self-signed", "auth": "htpasswd"}], ids=["plain", "tls-login"])
def test_the_no_op_check_is_one_curl_whose_headers_give_the_version(tmp_path, settings):
    ctx = replace(make_ctx(settings), password="pw", ca=CA)
    shell = f"s() {{ printf '\\n::kolla-registry:: %s\\n' \"$1\"; }}\n{_resolve_curl(ctx)}\n{VERSION_FROM_PING}\n{_judge(ctx, pull=False)}"

    output = run_script(shell, tmp_path, PING + RESOLVED)

    assert output.splitlines()[-1] == f"{MARK} resolved {ctx.probe_image}"
    assert f"::kolla-registry:: docker-server\n{SERVER}\n" in output
    [call] = (tmp_path / "bin" / "curl.calls").read_text().splitlines()
    assert "/_ping" not in call and "/v2/" not in call


def test_without_an_engine_s_resolve_tls_is_checked_with_its_own_handshake(tmp_path):
    ctx = make_ctx({"tls": "self-signed"})
    ca_file = tmp_path / "ca.crt"
    ca_file.write_text(CA)
    reach = tls_check(ctx, [str(ca_file)])

    output = run_script(script([reach]), tmp_path, "401")

    facts = parse(output, [reach])
    assert facts.reach.tls == "401" and tls_verified(facts)
    [call] = (tmp_path / "bin" / "curl.calls").read_text().splitlines()
    assert f"--cacert {ca_file}" in call

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


# --- a node through the engine (no SSH): its one row, and the sessions it costs -------------------


def trusting(**changes):
    """A Docker node whose daemon.json already lists the registry."""
    return docker_host(files={DAEMON_JSON: json.dumps({"insecure-registries": [REGISTRY]})}, **changes)


def test_a_fresh_docker_node_is_configured_reloaded_and_checked_in_one_more_session():
    run = run_on_host(ConfigureTargets(), docker_host())

    [row] = run.outcomes
    assert (row.step, row.status) == ("configure-targets", CHANGED)
    assert row.message == f"write {DAEMON_JSON}; Docker reload; pulled probe"
    assert row.engine == "docker 20.10.24+dfsg1"
    # The changes, the Docker handler (expecting the registry insecure) and the pull check: one script.
    [script] = run.scripts
    assert handler_script(REGISTRY, Limits().docker_wait, insecure=True) in script
    assert script.index("apply pending Docker changes") < script.index("images/create")


def test_a_configured_node_checked_in_its_facts_session_costs_no_other_session():
    run = run_on_host(ConfigureTargets(), trusting(verified=(0, f"{MARK} resolved x")))

    assert run.scripts == [] and run.gatherings == 1
    assert [(o.status, o.message) for o in run.outcomes] == [(OK, f"{REGISTRY} trusted; resolved probe")]



def test_a_no_op_whose_resolve_fell_back_to_the_full_check_says_it_pulled():
    run = run_on_host(ConfigureTargets(), trusting(verified=(0, f"{MARK} pulled x")))

    assert [(o.status, o.message) for o in run.outcomes] == [(OK, f"{REGISTRY} trusted; pulled probe")]

def test_a_configured_node_not_checked_yet_runs_only_the_check():
    run = run_on_host(ConfigureTargets(), trusting())

    [script] = run.scripts
    assert script == in_turn([verify_script(run.ctx)])
    assert [(o.status, o.message) for o in run.outcomes] == [(OK, f"{REGISTRY} trusted; pulled probe")]


def test_a_failed_check_in_the_facts_session_fails_the_row_with_its_fix():
    failed = f"{MARK} fail docker pull x: x509: certificate signed by unknown authority"
    run = run_on_host(ConfigureTargets(), trusting(verified=(1, failed)))

    [row] = run.outcomes
    assert run.scripts == [] and row.status == FAILED
    assert row.message == (
        "exit 1: docker pull x: x509: certificate signed by unknown authority "
        "(this node does not trust the registry's CA: run fab configure-targets)"
    )


def test_a_pull_that_fails_after_the_changes_fails_the_row_naming_them():
    def answer(script: str) -> str:
        if "images/create" in script:
            raise RemoteError("exit 1: docker pull x: http: server gave HTTP response to HTTPS client", 1)
        return ""

    run = run_on_host(ConfigureTargets(), docker_host(), answer=answer)

    [row] = run.outcomes
    assert row.status == FAILED
    assert row.message.startswith(f"write {DAEMON_JSON}; Docker reload: exit 1: docker pull x: http: server")
    assert row.message.endswith("(run fab configure-targets)")


def test_check_mode_says_what_would_change_and_runs_nothing():
    run = run_on_host(ConfigureTargets(), docker_host(), replace(make_ctx(), modes=Modes(check=True)))

    assert run.scripts == []
    assert [(o.status, o.message) for o in run.outcomes] == [(CHANGED, f"write {DAEMON_JSON}; Docker reload")]


def test_a_node_moving_to_tls_drops_its_insecure_entry_and_logs_in_only_once_dockerd_checks_certificates():
    ctx = replace(make_ctx({"tls": "self-signed", "auth": "htpasswd"}), ca=CA, password="s3cret-password")
    facts = trusting(registry_tls="no CA for it yet")
    facts.engine("docker").registry_config = {"InsecureRegistryCIDRs": ["127.0.0.0/8"], "IndexConfigs": {
        REGISTRY: {"Name": REGISTRY, "Mirrors": [], "Secure": False, "Official": False}}}

    def answer(script: str) -> str:
        # The node as the scripts leave it: the CA in place (TLS verifies), then the entry gone.
        if ca_path(REGISTRY) in script and ca_path(REGISTRY) not in facts.files:
            facts.files[ca_path(REGISTRY)] = CA
            facts.reach.tls = "401"
        elif "apply pending Docker changes" in script:
            facts.files[DAEMON_JSON] = json.dumps({"insecure-registries": []})
            facts.engine("docker").registry_config = {"InsecureRegistryCIDRs": ["127.0.0.0/8"], "IndexConfigs": {}}
        return ""

    run = run_on_host(ConfigureTargets(), facts, ctx, answer=answer)

    [row] = run.outcomes
    assert row.status == CHANGED and row.message == (
        f"write {ca_path(REGISTRY)}; write {DAEMON_JSON}; Docker reload; pulled probe"
    )
    # First round: the CA alone, no pull and no credentials while dockerd skips certificate checks;
    # second: the entry out, the handler expecting dockerd to check them, then the pull with the login.
    first, second = run.scripts
    header = base64.urlsafe_b64encode(json.dumps(
        {"username": "kolla", "password": "s3cret-password", "serveraddress": REGISTRY}).encode()).decode()
    assert "images/create" not in first and header not in first and "apply pending Docker changes" not in first
    handler = handler_script(REGISTRY, Limits().docker_wait, insecure=False)
    assert handler in second and second.index(handler) < second.index(header)
    assert run.gatherings == 3


def test_a_node_whose_tls_never_verifies_fails_without_a_login_and_keeps_its_entry():
    ctx = replace(make_ctx({"tls": "self-signed", "auth": "htpasswd"}), ca=CA, password="s3cret-password")
    facts = trusting(registry_tls="no CA for it yet")

    def answer(script: str) -> str:
        facts.files[ca_path(REGISTRY)] = CA
        facts.reach.tls = "curl: (60) SSL certificate problem: self-signed certificate"
        return ""

    run = run_on_host(ConfigureTargets(), facts, ctx, answer=answer)

    [row] = run.outcomes
    assert row.status == FAILED and row.message.startswith(
        f"TLS to {REGISTRY} does not verify from here with the registry's CA (curl: (60) SSL certificate problem"
    )
    [script] = run.scripts
    assert "images/create" not in script and "login" not in script and DAEMON_JSON not in script


def info(cidrs: list[str], index: dict) -> str:
    """dockerd's /info as its API gives it (compact JSON)."""
    config = {"InsecureRegistryCIDRs": cidrs, "IndexConfigs": index}
    return json.dumps({"ServerVersion": "26.1.5", "RegistryConfig": config}, separators=(",", ":"))


LISTED = {REGISTRY: {"Name": REGISTRY, "Mirrors": [], "Secure": False, "Official": False}}


@pytest.mark.parametrize(
    "info, checks",
    [
        (info(["::1/128", "127.0.0.0/8"], {"docker.io": {"Name": "docker.io", "Secure": True}}), True),
        (info(["10.0.0.0/8", "127.0.0.0/8"], {}), False),
        (info(["127.0.0.0/8"], LISTED), False),
        (info(["127.0.0.0/8"], {}), True),
        (info([], {}), True),
        (info(["::1/128", "192.168.0.0/16", "127.0.0.0/8"], {}), False),
        (json.dumps({"RegistryConfig": {"InsecureRegistryCIDRs": None, "Mirrors": ["x"]}}), False),
        ("", False),
    ],
)
def test_the_facts_session_logs_in_only_where_dockerd_checks_the_registrys_certificates(tmp_path, info, checks):
    ctx = replace(make_ctx({"tls": "self-signed", "auth": "htpasswd"}), ca=CA, password="s3cret-password")
    certs = tmp_path / "certs.d"
    (certs / REGISTRY).mkdir(parents=True)
    (certs / REGISTRY / "ca.crt").write_text(CA)
    shell = facts_script(ctx, verify=True).replace("/etc/docker/certs.d", str(certs))
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    # curl: dockerd's /info, or headers of a registry (and a pull) with its argv and stdin logged.
    (bin_dir / "curl").write_text(
        f"#!/bin/sh\necho \"$*\" >> {tmp_path}/argv\ncase $* in *docker/info*) printf '%s' '{info}'; exit 0 ;; esac\n"
        f"cat >> {tmp_path}/stdin\nprintf 'Docker-Distribution-Api-Version: registry/2.0\\r\\n'\n"
    )
    (bin_dir / "curl").chmod(0o755)
    (tmp_path / "stdin").write_text("")

    output = subprocess.run(
        ["sh", "-c", shell], env={"PATH": f"{bin_dir}:/usr/bin:/bin"}, capture_output=True, text=True, check=False
    ).stdout

    assert ("X-Registry-Auth" in (tmp_path / "stdin").read_text()) is checks
    facts = parse(output, sections(ctx, True))
    assert facts.engine("docker").registry_config == (json.loads(info)["RegistryConfig"] if info else {})
