"""A secure registry: its certificates and login planned from facts, made for real with openssl, trusted by nodes."""

from __future__ import annotations

import base64
import json
import os
import subprocess
from dataclasses import replace

import bcrypt
import pytest

from fabfile.engines.docker import trust
from fabfile.engines.docker.paths import DAEMON_JSON
from fabfile.engines.docker.verify import quick_verify_script, verify_script
from fabfile.facts.base import parse
from fabfile.model.inventory import TlsFiles
from fabfile.model.plan import RELOAD
from fabfile.registry import tls
from fabfile.registry.diagnose import diagnose
from fabfile.registry.paths import CA_CERT, CA_KEY, HTPASSWD, PASSWORD, SERVER_CERT, SERVER_KEY

from .factories import REGISTRY, REGISTRY_IP, changed, docker_host, make_ctx

SECURE = {"tls": "self-signed", "auth": "htpasswd"}
CA = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"


def deploy_host_with(**tls_state):
    """The deployment host with a CA, a server certificate (state as given) and a login."""
    password = "s3cret-password"
    hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=4)).decode()
    state = {"keys": {CA_KEY, SERVER_KEY}, "days": 200, "signed": True, "fingerprint": "AB:CD"}
    state["sans"] = {REGISTRY_IP, "deploy1"}
    state.update(tls_state)
    files = {CA_CERT: CA, SERVER_CERT: "cert", PASSWORD: password + "\n", HTPASSWD: f"kolla:{hashed}\n"}
    return changed(docker_host(), tls=state, names=["deploy1"], files=files)


def test_a_plain_registry_needs_nothing():
    plan = tls.secure_registry(docker_host(), make_ctx())
    assert not plan.changed and plan.notes == ["plain HTTP, as the procedure (registry.tls: off)"]


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
    ],
)
def test_the_server_certificate_is_renewed_or_reissued_when_it_must_be(state, reason):
    plan = tls.secure_registry(deploy_host_with(**state), make_ctx(SECURE))
    assert [command.splitlines()[0] for command in plan.commands] == [reason]


def test_a_login_file_that_does_not_match_the_password_is_rewritten():
    facts = deploy_host_with()
    facts.files[HTPASSWD] = "kolla:$2b$04$notthehashofthepasswordxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n"
    [change] = tls.secure_registry(facts, make_ctx(SECURE)).files
    assert change.path == HTPASSWD and bcrypt.checkpw(
        b"s3cret-password", change.after.split(":", 1)[1].strip().encode()
    )


def test_the_commands_make_a_certificate_that_verifies_and_names_the_registry(tmp_path):
    facts = docker_host()
    plan = tls.secure_registry(
        changed(facts, names=["deploy1", "deploy1.lab"]), make_ctx({"tls": "self-signed"})
    )
    script = "\n".join(["set -e", *plan.commands]).replace("/etc/kolla-registry", str(tmp_path))

    subprocess.run(["sh", "-c", script], check=True, capture_output=True)

    state = subprocess.run(
        [
            "sh",
            "-c",
            "s() { printf '\\n::kolla-registry:: %s\\n' \"$1\"; }\n"
            + tls._STATE.shell.replace("/etc/kolla-registry", str(tmp_path)),
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    found = parse(state, [tls._STATE])
    assert found.registry.tls["signed"] is True and 360 <= found.registry.tls["days"] <= 365
    assert {REGISTRY_IP, "deploy1", "deploy1.lab"} <= found.registry.tls["sans"]
    assert oct(os.stat(tmp_path / "tls" / "ca.key").st_mode & 0o777) == "0o600"
    assert oct(os.stat(tmp_path / "tls" / "server.key").st_mode & 0o777) == "0o600"


# --- nodes -----------------------------------------------------------------------------------------


def node(**changes):
    return changed(docker_host(), **changes)


def test_a_node_gets_the_ca_where_docker_reads_it_and_no_reload():
    plan = trust.trust_registry(node(), replace(make_ctx(SECURE), ca=CA))
    [change] = plan.files
    assert change.path == f"/etc/docker/certs.d/{REGISTRY}/ca.crt" and change.after == CA
    assert plan.handler is None


def test_a_node_that_trusted_the_insecure_registry_loses_the_entry_once_tls_verifies():
    daemon = json.dumps({"log-driver": "journald", "insecure-registries": ["other:5000", REGISTRY]})
    files = {DAEMON_JSON: daemon, f"/etc/docker/certs.d/{REGISTRY}/ca.crt": CA}
    ctx = replace(make_ctx(SECURE), ca=CA)

    waiting = trust.trust_registry(node(files=files, registry_tls="no CA for it yet"), ctx)
    assert not waiting.changed and "stays in insecure-registries" in waiting.notes[0]

    plan = trust.trust_registry(node(files=files, registry_tls="401"), ctx)
    [change] = plan.files
    assert json.loads(change.after) == {"log-driver": "journald", "insecure-registries": ["other:5000"]}
    assert plan.handler == RELOAD


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


def test_the_login_never_reaches_a_command_line(tmp_path):
    ctx = replace(make_ctx(SECURE), ca=CA, password="s3cret-password")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = f'echo "$*" >> {tmp_path}/argv\ncat >> {tmp_path}/stdin\n'
    (bin_dir / "curl").write_text(f"#!/bin/sh\n{log}echo 'Docker-Distribution-Api-Version: registry/2.0'\n")
    (bin_dir / "docker").write_text(f'#!/bin/sh\n{log}[ "$1" = inspect ] && echo running\nexit 0\n')
    for tool in bin_dir.iterdir():
        tool.chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}

    for script in (quick_verify_script(ctx), verify_script(ctx, push=True)):
        subprocess.run(["sh", "-c", script], env=env, capture_output=True, text=True, check=False)

    argv, stdin = (tmp_path / "argv").read_text(), (tmp_path / "stdin").read_text()
    assert "s3cret-password" not in argv
    assert "s3cret-password" in stdin  # docker login --password-stdin
    header = next(line for line in stdin.splitlines() if line.startswith("X-Registry-Auth: "))
    credentials = json.loads(base64.urlsafe_b64decode(header.split(": ", 1)[1]))
    assert credentials == {"username": "kolla", "password": "s3cret-password", "serveraddress": REGISTRY}
    assert f"https://{REGISTRY}/v2/" in argv and f"--cacert /etc/docker/certs.d/{REGISTRY}/ca.crt" in argv


def test_the_operators_own_files_are_put_in_place_the_key_as_a_secret(tmp_path):
    for name, text in (("ca.crt", CA), ("server.crt", "cert\n"), ("server.key", "key\n")):
        (tmp_path / name).write_text(text)
    own = TlsFiles(str(tmp_path / "server.crt"), str(tmp_path / "server.key"), str(tmp_path / "ca.crt"))
    ctx = make_ctx()
    ctx = replace(
        ctx,
        inventory=replace(
            ctx.inventory, registry=replace(ctx.inventory.registry, tls="files", tls_files=own)
        ),
    )

    plan = tls.secure_registry(docker_host(), ctx)

    assert [(c.path, c.after, c.mode, c.secret) for c in plan.files] == [
        (CA_CERT, CA, "644", False),
        (SERVER_CERT, "cert\n", "644", False),
        (SERVER_KEY, "key\n", "600", True),
    ]
    facts = changed(docker_host(), files={CA_CERT: CA, SERVER_CERT: "cert\n", SERVER_KEY: "key\n"})
    assert not tls.secure_registry(facts, ctx).changed
