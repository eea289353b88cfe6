"""A secure registry: its certificates and login planned from facts, made for real with openssl, trusted by nodes."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import socket
import ssl
import subprocess
import threading
from dataclasses import replace
from pathlib import Path

import bcrypt
import pytest

from fabfile.engines.docker import trust
from fabfile.engines.docker.paths import DAEMON_JSON
from fabfile.engines.docker.verify import quick_verify_script, verify_script
from fabfile.facts.base import parse
from fabfile.model.inventory import TlsFiles
from fabfile.model.marks import CONFLICT_EXIT
from fabfile.model.plan import RELOAD
from fabfile.registry import tls
from fabfile.registry.diagnose import diagnose
from fabfile.registry.paths import (
    CA_CERT,
    CA_KEY,
    HTPASSWD,
    OLD_CA_CERT,
    OLD_CA_KEY,
    PASSWORD,
    SERVER_CERT,
    SERVER_KEY,
)

from .factories import REGISTRY, REGISTRY_IP, changed, docker_host, make_ctx

SECURE = {"tls": "self-signed", "auth": "htpasswd"}
CA = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
SOUND_CA = "X509v3 Basic Constraints: critical CA:TRUE, pathlen:0 X509v3 Key Usage: critical Certificate Sign, CRL Sign"
SOUND_SERVER = (
    "X509v3 Key Usage: critical Digital Signature, Key Encipherment "
    "X509v3 Extended Key Usage: TLS Web Server Authentication"
)
# The CA and server certificate as versions before this one made them (in the folder the container saw).
LEGACY = """set -e
mkdir -p /etc/kolla-registry/tls
(umask 077; openssl genrsa -out /etc/kolla-registry/tls/ca.key 2048 2>/dev/null)
openssl req -x509 -new -key /etc/kolla-registry/tls/ca.key -sha256 -days 3650 -subj '/CN=kolla-registry CA' \
  -out /etc/kolla-registry/tls/ca.crt
cd /etc/kolla-registry/tls
(umask 077; openssl genrsa -out server.key 2048 2>/dev/null)
printf '%s\\n' 'subjectAltName=IP:192.0.2.10,DNS:deploy1' 'extendedKeyUsage=serverAuth' > server.ext
openssl req -new -key server.key -subj '/CN=192.0.2.10' -out server.csr
openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 365 -sha256 -extfile server.ext \
  -out server.crt 2>/dev/null
rm -f server.csr server.ext
"""


def deploy_host_with(**tls_state):
    """The deployment host with a CA, a server certificate (state as given) and a login."""
    password = "s3cret-password"
    hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=4)).decode()
    state = {"keys": {CA_KEY, SERVER_KEY}, "days": 200, "signed": True, "fingerprint": "AB:CD"}
    state.update(sans={REGISTRY_IP, "deploy1"}, ca_ext=SOUND_CA, server_ext=SOUND_SERVER, ca_mode="700")
    state.update(tls_state)
    files = {CA_CERT: CA, SERVER_CERT: "cert", PASSWORD: password + "\n", HTPASSWD: f"kolla:{hashed}\n"}
    return changed(docker_host(), tls=state, names=["deploy1"], files=files)


def on(root: Path, script: str) -> subprocess.CompletedProcess:
    """``script`` under sh, /etc/kolla-registry being ``root``."""
    return subprocess.run(
        ["sh", "-c", script.replace("/etc/kolla-registry", str(root))], capture_output=True, text=True, check=False
    )


def gathered(root: Path) -> dict:
    """The TLS facts of a host whose /etc/kolla-registry is ``root``, read by the real section (paths mapped back)."""
    output = on(root, "s() { printf '\\n::kolla-registry:: %s\\n' \"$1\"; }\n" + tls._STATE.shell).stdout
    state = parse(output.replace(str(root), "/etc/kolla-registry"), [tls._STATE]).registry.tls
    return state


def facts_of(root: Path):
    """The deployment host's facts as the real sections read them, from ``root``."""
    found = {}
    for path in (CA_CERT, OLD_CA_CERT, SERVER_CERT):
        local = Path(path.replace("/etc/kolla-registry", str(root)))
        if local.exists():
            found[path] = local.read_text()
    return changed(docker_host(), tls=gathered(root), names=["deploy1"], files=found)


def handshake(root: Path, ca: str, cert: str = "tls/server.crt", key: str = "tls/server.key") -> str:
    """A real TLS handshake to the server certificate, verified as Python 3.13 does by default
    (VERIFY_X509_STRICT): "ok", or the verification error."""
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(root / cert, root / key)
    client = ssl.create_default_context(cafile=str(root / ca))
    client.verify_flags |= ssl.VERIFY_X509_STRICT
    left, right = socket.socketpair()
    served = threading.Thread(target=_serve, args=(server, right), daemon=True)
    served.start()
    try:
        with client.wrap_socket(left, server_hostname=REGISTRY_IP):
            return "ok"
    except ssl.SSLCertVerificationError as error:
        return error.verify_message
    finally:
        served.join(5)


def _serve(context: ssl.SSLContext, sock: socket.socket) -> None:
    try:
        with context.wrap_socket(sock, server_side=True):
            pass
    except (ssl.SSLError, OSError):
        pass


def test_a_plain_registry_is_named_as_such_with_the_setting_that_secures_it():
    plan = tls.secure_registry(docker_host(), make_ctx())
    assert not plan.changed and plan.notes == [
        (
            "plain HTTP, no login: anyone who reaches its port can pull any image, and anyone on the way can "
            "swap what nodes pull; "
            "set registry: {tls: self-signed, auth: htpasswd} for TLS and a login"
        )
    ]


def test_a_tls_registry_without_a_login_says_anyone_can_pull_and_no_one_push():
    plan = tls.secure_registry(deploy_host_with(), make_ctx({"tls": "self-signed"}))
    # Read-only: nobody can push through it, with or without a login.
    assert not plan.changed and plan.notes[-1] == (
        "TLS, no login: anyone who reaches its port can pull any image (registry.auth: htpasswd for a login)"
    )


def test_a_fresh_host_gets_a_ca_a_certificate_and_a_login():
    plan = tls.secure_registry(docker_host(), make_ctx(SECURE))

    assert plan.error is None
    assert [command.splitlines()[0] for command in plan.commands] == [
        "# make the registry's CA (its key stays on this host, 0600)",
        "# make the registry's server certificate",
    ]
    password, htpasswd = plan.files
    assert (password.path, password.mode, password.secret) == (PASSWORD, "600", True)
    assert (htpasswd.path, htpasswd.mode, htpasswd.secret) == (HTPASSWD, "600", True)
    user, hashed = htpasswd.after.strip().split(":", 1)
    assert user == "kolla" and bcrypt.checkpw(password.after.strip().encode(), hashed.encode())
    assert "s3cret" not in plan.summary() and password.after.strip() not in password.diff()


def test_a_host_that_has_everything_needs_nothing():
    plan = tls.secure_registry(deploy_host_with(), make_ctx(SECURE))
    assert not plan.changed, plan.summary()
    assert "TLS: server certificate valid 200 more days" in plan.notes


@pytest.mark.parametrize(
    "state, reason",
    [
        ({"days": 12}, "# renew the server certificate (12 days left)"),
        ({"sans": {"deploy1"}}, f"# re-issue the server certificate for {REGISTRY_IP}"),
        ({"signed": False}, "# re-issue the server certificate: the CA did not sign it"),
        ({"keys": {CA_KEY}}, "# make the registry's server certificate"),
        (
            {"server_ext": "X509v3 Extended Key Usage: TLS Web Server Authentication"},
            "# re-issue the server certificate with its key usage (serverAuth)",
        ),
    ],
)
def test_the_server_certificate_is_renewed_or_reissued_when_it_must_be(state, reason):
    plan = tls.secure_registry(deploy_host_with(**state), make_ctx(SECURE))
    assert [command.splitlines()[0] for command in plan.commands] == [reason]


@pytest.mark.parametrize(
    "extensions",
    ["X509v3 Basic Constraints: critical CA:TRUE", "X509v3 Basic Constraints: CA:TRUE X509v3 Key Usage: critical Certificate Sign", ""],
)
def test_a_ca_without_a_cas_extensions_is_reissued_alone(extensions):
    plan = tls.secure_registry(deploy_host_with(ca_ext=extensions), make_ctx(SECURE))
    assert [command.splitlines()[0] for command in plan.commands] == [
        "# re-issue the registry's CA with its key usage (same key and name: what it signed stays valid)"
    ]


def test_a_login_file_that_does_not_match_the_password_is_rewritten():
    facts = deploy_host_with()
    facts.files[HTPASSWD] = "kolla:$2b$04$notthehashofthepasswordxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n"
    [change] = tls.secure_registry(facts, make_ctx(SECURE)).files
    assert change.path == HTPASSWD and bcrypt.checkpw(
        b"s3cret-password", change.after.split(":", 1)[1].strip().encode()
    )


# --- for real, with openssl: what Debian 13's Python 3.13 accepts ----------------------------------


def test_the_commands_make_certificates_strict_verification_accepts(tmp_path):
    plan = tls.secure_registry(changed(docker_host(), names=["deploy1", "deploy1.lab"]), make_ctx({"tls": "self-signed"}))

    made = on(tmp_path, "\n".join(["set -e", *plan.commands]))

    assert made.returncode == 0, made.stderr
    assert handshake(tmp_path, "ca/ca.crt") == "ok"
    state = gathered(tmp_path)
    assert state["signed"] is True and 360 <= state["days"] <= 365 and "strict" not in state
    assert {REGISTRY_IP, "deploy1", "deploy1.lab"} <= state["sans"]
    # The CA in a folder of its own, 0700; what the registry container sees holds the server's files only.
    assert oct((tmp_path / "ca").stat().st_mode & 0o777) == "0o700"
    assert oct((tmp_path / "ca" / "ca.key").stat().st_mode & 0o777) == "0o600"
    assert oct((tmp_path / "tls" / "server.key").stat().st_mode & 0o777) == "0o600"
    assert sorted(os.listdir(tmp_path / "tls")) == ["server.crt", "server.key"]
    assert not tls.secure_registry(facts_of(tmp_path), make_ctx({"tls": "self-signed"})).changed


def test_an_old_ca_is_moved_out_of_the_containers_folder_and_reissued_once_keeping_what_it_signed(tmp_path):
    assert on(tmp_path, LEGACY).returncode == 0
    old_server = [(tmp_path / "tls" / name).read_text() for name in ("server.crt", "server.key")]
    old_key = on(tmp_path, f"openssl pkey -in {OLD_CA_KEY} -pubout").stdout
    # What Debian 13 does with such a CA today.
    assert handshake(tmp_path, "tls/ca.crt") == "CA cert does not include key usage extension"
    facts = facts_of(tmp_path)
    ctx = make_ctx({"tls": "self-signed"})

    plan = tls.secure_registry(facts, ctx)

    assert [command.splitlines()[0] for command in plan.commands] == [
        "# move the CA out of the registry container's folder into /etc/kolla-registry/ca (0700)",
        "# re-issue the registry's CA with its key usage (same key and name: what it signed stays valid)",
        "# re-issue the server certificate with its key usage (serverAuth)",
    ]
    for name, text in zip(("old-server.crt", "old-server.key"), old_server, strict=True):
        (tmp_path / name).write_text(text)
    done = on(tmp_path, "\n".join(["set -e", *plan.commands]))
    assert done.returncode == 0, done.stderr
    assert sorted(os.listdir(tmp_path / "tls")) == ["server.crt", "server.key"]
    assert oct((tmp_path / "ca").stat().st_mode & 0o777) == "0o700"
    assert on(tmp_path, f"openssl pkey -in {CA_KEY} -pubout").stdout == old_key
    subject = on(tmp_path, f"openssl x509 -noout -subject -in {CA_CERT}").stdout
    assert subject.strip() == "subject=CN = kolla-registry CA"
    # The certificate the old CA signed verifies, strictly, against the re-issued one: nodes may have either.
    assert handshake(tmp_path, "ca/ca.crt", cert="old-server.crt", key="old-server.key") == "ok"
    assert handshake(tmp_path, "ca/ca.crt") == "ok"
    assert not tls.secure_registry(facts_of(tmp_path), ctx).changed


def test_the_deployment_hosts_own_ca_wins_over_the_one_learnt_at_the_start_of_the_run():
    # deploy-host re-issued the CA a step ago: its certs.d copy must be the new one, in the same run.
    facts = changed(docker_host(), files={CA_CERT: "NEW CA\n"})
    plan = trust.trust_registry(facts, replace(make_ctx(SECURE), ca="OLD CA\n"))
    [change] = plan.files
    assert change.path == f"/etc/docker/certs.d/{REGISTRY}/ca.crt" and change.after == "NEW CA\n"


# --- nodes -----------------------------------------------------------------------------------------


def node(**changes):
    return changed(docker_host(), **changes)


def test_a_node_gets_the_ca_where_docker_reads_it_and_no_reload():
    plan = trust.trust_registry(node(), replace(make_ctx(SECURE), ca=CA))
    [change] = plan.files
    assert change.path == f"/etc/docker/certs.d/{REGISTRY}/ca.crt" and change.after == CA
    assert plan.handler is None


def test_a_node_with_the_old_ca_gets_the_reissued_one():
    plan = trust.trust_registry(node(files={f"/etc/docker/certs.d/{REGISTRY}/ca.crt": "OLD CA\n"}), replace(make_ctx(SECURE), ca=CA))
    [change] = plan.files
    assert (change.before, change.after) == ("OLD CA\n", CA) and plan.handler is None


def test_a_node_that_trusted_the_insecure_registry_loses_the_entry_once_tls_verifies():
    daemon = json.dumps({"log-driver": "journald", "insecure-registries": ["other:5000", REGISTRY]})
    ctx = replace(make_ctx(SECURE), ca=CA)

    first = trust.trust_registry(node(files={DAEMON_JSON: daemon}, registry_tls="no CA for it yet"), ctx)
    assert [change.path for change in first.files] == [f"/etc/docker/certs.d/{REGISTRY}/ca.crt"]
    assert first.notes == [f"{REGISTRY} stays insecure in {DAEMON_JSON} insecure-registries until TLS verifies from here"]

    files = {DAEMON_JSON: daemon, f"/etc/docker/certs.d/{REGISTRY}/ca.crt": CA}
    plan = trust.trust_registry(node(files=files, registry_tls="401"), ctx)
    [change] = plan.files
    assert json.loads(change.after) == {"log-driver": "journald", "insecure-registries": ["other:5000"]}
    assert plan.handler == RELOAD


def test_a_node_whose_tls_does_not_verify_with_the_ca_in_place_fails_and_stays_insecure():
    daemon = json.dumps({"insecure-registries": [REGISTRY]})
    files = {DAEMON_JSON: daemon, f"/etc/docker/certs.d/{REGISTRY}/ca.crt": CA}
    why = "curl: (60) SSL certificate problem: unable to get local issuer certificate"

    plan = trust.trust_registry(node(files=files, registry_tls=why), replace(make_ctx(SECURE), ca=CA))

    assert plan.error == (
        f"TLS to {REGISTRY} does not verify from here with the registry's CA ({why}): "
        f"it stays insecure in {DAEMON_JSON} insecure-registries, and no login is sent"
    )


def test_the_target_plan_with_only_a_new_ca_runs_no_docker_handler():
    plan = trust.configure_target(node(), replace(make_ctx(SECURE), ca=CA))
    assert len(plan.files) == 1 and plan.commands == [] and plan.handler is None and plan.fire is None


def test_no_ca_yet_says_to_deploy_first():
    assert trust.trust_registry(node(), make_ctx(SECURE)).error == (
        "the registry's CA is not on the deployment host yet: run fab deploy-host"
    )


@pytest.mark.parametrize(
    "text, fix",
    [
        ("x509: certificate signed by unknown authority", "run fab configure-targets"),
        ("SSL certificate problem: unable to get local issuer certificate", "run fab configure-targets"),
        ("x509: certificate has expired or is not yet valid", "run fab deploy-host (it renews it)"),
        ("x509: certificate is valid for 10.0.0.1, not 192.0.2.10", "re-issue it"),
        ("unauthorized: authentication required", "fab kolla-globals"),
        ("http: server gave HTTP response to HTTPS client", "switch it to TLS"),
        ("no space left on device", ""),
    ],
)
def test_failures_name_their_fix(text, fix):
    assert (fix in diagnose(text)) if fix else diagnose(text) == ""


def fake_tools(tmp_path: Path, curl: str) -> dict:
    """A PATH whose curl runs ``curl`` (after logging its argv and stdin), docker logs the same, python3 fails."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = f'echo "$*" >> {tmp_path}/argv\ncat >> {tmp_path}/stdin\n'
    (bin_dir / "curl").write_text(f"#!/bin/sh\n{log}{curl}\n")
    (bin_dir / "docker").write_text(f'#!/bin/sh\n{log}[ "$1" = inspect ] && echo running\nexit 0\n')
    (bin_dir / "python3").write_text("#!/bin/sh\nexit 1\n")
    for tool in bin_dir.iterdir():
        tool.chmod(0o755)
    (tmp_path / "stdin").write_text("")
    return {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}


def test_the_login_never_reaches_a_command_line(tmp_path):
    ctx = replace(make_ctx(SECURE), ca=CA, password="s3cret-password")
    env = fake_tools(tmp_path, "echo 'Docker-Distribution-Api-Version: registry/2.0'")

    for script in (quick_verify_script(ctx), verify_script(ctx, push=True)):
        subprocess.run(["sh", "-c", script], env=env, capture_output=True, text=True, check=False)

    argv, stdin = (tmp_path / "argv").read_text(), (tmp_path / "stdin").read_text()
    assert "s3cret-password" not in argv
    assert "s3cret-password" in stdin  # docker login --password-stdin
    header = next(line for line in stdin.splitlines() if line.startswith("X-Registry-Auth: "))
    credentials = json.loads(base64.urlsafe_b64decode(header.split(": ", 1)[1]))
    assert credentials == {"username": "kolla", "password": "s3cret-password", "serveraddress": REGISTRY}
    assert f"https://{REGISTRY}/v2/" in argv and f"--cacert /etc/docker/certs.d/{REGISTRY}/ca.crt" in argv


def test_no_credentials_leave_the_node_before_tls_verified_with_the_ca_without_them(tmp_path):
    ctx = replace(make_ctx(SECURE), ca=CA, password="s3cret-password")
    # Whatever answers there does not hold a certificate the CA signed.
    env = fake_tools(tmp_path, "echo 'curl: (60) SSL certificate problem: self-signed certificate' >&2; exit 60")

    done = subprocess.run(["sh", "-c", quick_verify_script(ctx)], env=env, capture_output=True, text=True, check=False)

    assert done.returncode != 0
    assert (tmp_path / "stdin").read_text() == "" and "login" not in (tmp_path / "argv").read_text()
    assert "images/create" not in (tmp_path / "argv").read_text()


# --- the operator's own files ---------------------------------------------------------------------


def own_files_ctx(tmp_path: Path, key: bytes = b"key\n"):
    for name, text in (("ca.crt", CA), ("server.crt", "cert\n")):
        (tmp_path / name).write_text(text)
    (tmp_path / "server.key").write_bytes(key)
    own = TlsFiles(str(tmp_path / "server.crt"), str(tmp_path / "server.key"), str(tmp_path / "ca.crt"))
    ctx = make_ctx()
    registry = replace(ctx.inventory.registry, tls="files", tls_files=own)
    return replace(ctx, inventory=replace(ctx.inventory, registry=registry))


def test_the_operators_own_files_are_put_in_place_the_key_by_its_digest_never_read_back(tmp_path):
    ctx = own_files_ctx(tmp_path)

    plan = tls.secure_registry(docker_host(), ctx)

    assert [(c.path, c.after, c.mode, c.secret) for c in plan.files] == [
        (CA_CERT, CA, "644", False),
        (SERVER_CERT, "cert\n", "644", False),
    ]
    [command] = plan.commands
    assert command.startswith("# put the operator's server key in place") and "key\n" not in command
    assert base64.b64encode(b"key\n").decode() in command
    # The deployment host's facts hold the key's digest, never the key.
    shells = "\n".join(section.shell for section in tls.tls_sections(ctx))
    assert f"sha256sum < {SERVER_KEY}" in shells and "base64 -w0 \"$f\"" in shells
    assert SERVER_KEY not in shells.split("for f in ")[1].split(";")[0]
    digest = hashlib.sha256(b"key\n").hexdigest()
    facts = changed(docker_host(), files={CA_CERT: CA, SERVER_CERT: "cert\n"}, tls={"key_digest": digest, "days": 90})
    again = tls.secure_registry(facts, ctx)
    assert not again.changed and again.notes[0] == "TLS: the operator's certificate, 90 more days"


def test_the_operators_key_is_written_0600_and_only_over_the_key_the_facts_showed(tmp_path):
    (tmp_path / "local").mkdir()
    ctx = own_files_ctx(tmp_path / "local", key=b"new key\n")
    root = tmp_path / "host"
    (root / "tls").mkdir(parents=True)
    (root / "tls" / "server.key").write_bytes(b"old key\n")
    shown = hashlib.sha256(b"old key\n").hexdigest()
    [command] = tls.secure_registry(changed(docker_host(), tls={"key_digest": shown}), ctx).commands

    assert on(root, "set -e\n" + command).returncode == 0
    assert (root / "tls" / "server.key").read_bytes() == b"new key\n"
    assert oct((root / "tls" / "server.key").stat().st_mode & 0o777) == "0o600"

    # Another run changed the key since these facts: nothing written, the engine plans again.
    (root / "tls" / "server.key").write_bytes(b"someone else's key\n")
    raced = on(root, "set -e\n" + command)
    assert raced.returncode == CONFLICT_EXIT and "conflict" in raced.stdout
    assert (root / "tls" / "server.key").read_bytes() == b"someone else's key\n"


def test_the_old_copy_of_the_operators_ca_in_the_containers_folder_is_removed_with_a_backup(tmp_path):
    ctx = own_files_ctx(tmp_path)
    digest = hashlib.sha256(b"key\n").hexdigest()
    facts = changed(
        docker_host(), files={CA_CERT: CA, SERVER_CERT: "cert\n", OLD_CA_CERT: CA}, tls={"key_digest": digest}
    )
    [change] = tls.secure_registry(facts, ctx).files
    assert (change.path, change.before, change.after) == (OLD_CA_CERT, CA, None)
