"""Replicas with TLS and a login: the deployment host's CA issues each replica's certificate, and each replica
is given its certificate, its key and the one login file, learnt from the deployment host."""

from __future__ import annotations

import hashlib
import socket
import ssl
import threading
from dataclasses import replace
from pathlib import Path

import pytest

from fabfile.actions.deploy import DEPLOY_STEPS, DeploySteps
from fabfile.engine.access import RegistryAccess
from fabfile.facts.base import parse
from fabfile.model.context import Modes, Served
from fabfile.model.inventory import Host, TlsFiles
from fabfile.model.outcome import CHANGED, FAILED
from fabfile.registry import replica_tls, tls
from fabfile.registry.paths import (
    CA_CERT,
    CA_KEY,
    HTPASSWD,
    PASSWORD,
    SERVER_CERT,
    SERVER_KEY,
    replica_cert,
    replica_key,
)

from .factories import REGISTRY_IP, changed, container, docker_host, make_ctx, run_on_host
from .test_tls import SOUND_SERVER, deploy_host_with, on

NAME = "kolla-registry.internal"
REPLICAS = (Host("replica1", "192.0.2.21"), Host("replica2", "192.0.2.22"))
SECURE = {"tls": "self-signed", "auth": "htpasswd", "hostname": NAME, "replicas": REPLICAS}
KEY = "-----BEGIN PRIVATE KEY-----\nREPLICA1KEY\n-----END PRIVATE KEY-----\n"


def deploy_ctx(settings: dict | None = None, modes: Modes | None = None):
    ctx = make_ctx(settings or SECURE, address=REGISTRY_IP)
    return replace(ctx, host_name="deploy1", modes=modes or Modes())


def replica_ctx(served: Served | None, settings: dict | None = None, modes: Modes | None = None):
    ctx = make_ctx(settings or SECURE, address="192.0.2.21")
    return replace(ctx, host_name="replica1", served=served, modes=modes or Modes())


def sound(**change) -> dict:
    state = {"keys": {"server"}, "days": 300, "signed": True, "server_ext": SOUND_SERVER}
    state["sans"] = {NAME, "192.0.2.21", "replica1"}
    return {**state, **change}


def headers(plan) -> list[str]:
    return [command.splitlines()[0] for command in plan.commands]


# --- the inventory -------------------------------------------------------------------------------------------


def test_a_deployment_host_with_sound_replica_certificates_needs_nothing():
    facts = deploy_host_with(sans={REGISTRY_IP, "deploy1", NAME})
    facts.registry.tls["replicas"] = {"replica1": sound(), "replica2": sound(sans={NAME, "192.0.2.22", "replica2"})}

    plan = tls.secure_registry(facts, deploy_ctx())

    assert not plan.changed, plan.summary()


def test_a_fresh_deployment_host_issues_a_certificate_for_each_replica_naming_the_one_name_its_address_and_name():
    plan = tls.secure_registry(docker_host(), deploy_ctx())

    assert headers(plan) == [
        "# make the registry's CA (its key stays on this host, 0600)",
        "# make the registry's server certificate",
        "# replica1: make the registry's server certificate",
        "# replica2: make the registry's server certificate",
    ]
    replica1 = plan.commands[2]
    assert f"subjectAltName=IP:192.0.2.21,DNS:{NAME},DNS:replica1" in replica1
    assert f"-out {replica_cert('replica1')}.new" in replica1 and f"-out {replica_key('replica1')}.new" in replica1
    # Its own address names the deployment host's: the one name too.
    assert f"DNS:{NAME}" in plan.commands[1]


@pytest.mark.parametrize(
    ("state", "reason"),
    [
        ({"days": 10}, "# replica1: renew the server certificate (10 days left)"),
        ({"sans": {NAME, "192.0.2.21"}}, "# replica1: re-issue the server certificate for replica1"),
        ({"signed": False}, "# replica1: re-issue the server certificate: the CA did not sign it"),
        ({"keys": set()}, "# replica1: make the registry's server certificate"),
    ],
)
def test_a_replica_s_certificate_is_renewed_or_reissued_on_the_deployment_host_as_its_own_is(state, reason):
    facts = deploy_host_with(sans={REGISTRY_IP, "deploy1", NAME})
    facts.registry.tls["replicas"] = {"replica1": sound(**state), "replica2": sound(sans={NAME, "192.0.2.22", "replica2"})}

    assert headers(tls.secure_registry(facts, deploy_ctx())) == [reason]


def test_with_the_operator_s_files_the_deployment_host_issues_nothing_for_replicas(tmp_path):
    assert replica_tls.replica_sections(deploy_ctx({**SECURE, "tls": "off"})) == ()
    assert replica_tls.replica_sections(deploy_ctx()) != ()
    assert replica_tls.replica_sections(replace(deploy_ctx(), host_name="replica1")) == ()


# --- for real, with openssl ---------------------------------------------------------------------------------


def strict_handshake(root: Path, cert: str, key: str, name: str) -> str:
    """A TLS handshake to ``cert``, verified as Python 3.13 does (VERIFY_X509_STRICT) for ``name``."""
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(root / cert, root / key)
    client = ssl.create_default_context(cafile=str(root / "ca" / "ca.crt"))
    client.verify_flags |= ssl.VERIFY_X509_STRICT
    left, right = socket.socketpair()

    def serve() -> None:
        try:
            with server.wrap_socket(right, server_side=True):
                pass
        except (ssl.SSLError, OSError):
            pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        with client.wrap_socket(left, server_hostname=name):
            return "ok"
    except ssl.SSLCertVerificationError as error:
        return error.verify_message
    finally:
        thread.join(5)


def test_the_replica_certificates_verify_strictly_by_the_one_name_and_the_address_and_are_kept_private(tmp_path):
    ctx = deploy_ctx({"tls": "self-signed", "hostname": NAME, "replicas": REPLICAS})
    plan = tls.secure_registry(changed(docker_host(), names=["deploy1"]), ctx)

    made = on(tmp_path, "\n".join(["set -e", *plan.commands]))

    assert made.returncode == 0, made.stderr
    for name in (NAME, "192.0.2.21", "replica1"):
        assert strict_handshake(tmp_path, "ca/replicas/replica1.crt", "ca/replicas/replica1.key", name) == "ok"
    assert strict_handshake(tmp_path, "ca/replicas/replica1.crt", "ca/replicas/replica1.key", "192.0.2.22") != "ok"
    assert oct((tmp_path / "ca" / "replicas").stat().st_mode & 0o777) == "0o700"
    assert oct((tmp_path / "ca" / "replicas" / "replica1.key").stat().st_mode & 0o777) == "0o600"
    # The real section reads them back as sound: a second run issues nothing.
    [section] = replica_tls.replica_sections(ctx)
    output = on(tmp_path, "s() { printf '\\n::kolla-registry:: %s\\n' \"$1\"; }\n" + section.shell).stdout
    state = parse(output.replace(str(tmp_path), "/etc/kolla-registry"), [section]).registry.tls["replicas"]
    assert state["replica1"]["sans"] == {NAME, "192.0.2.21", "replica1"} and state["replica1"]["signed"]
    facts = changed(docker_host(), names=["deploy1"], files={CA_CERT: (tmp_path / "ca" / "ca.crt").read_text()})
    facts.registry.tls = {**tls_state(tmp_path), "replicas": state}
    assert replica_tls.served_sections(ctx.inventory)[0].shell.count("/etc/kolla-registry/ca/replicas/") == 4
    again = tls.secure_registry(facts, ctx)
    assert not again.changed, again.summary()


def tls_state(root: Path) -> dict:
    output = on(root, "s() { printf '\\n::kolla-registry:: %s\\n' \"$1\"; }\n" + tls._STATE.shell).stdout
    return parse(output.replace(str(root), "/etc/kolla-registry"), [tls._STATE]).registry.tls


# --- on a replica --------------------------------------------------------------------------------------------


def test_a_replica_writes_what_the_deployment_host_issued_for_it_and_makes_nothing_of_its_own():
    served = Served("REPLICA1 CERT\n", KEY, "kolla:$2b$04$hash\n")

    plan = tls.secure_registry(docker_host(), replica_ctx(served))

    assert plan.error is None
    assert [(change.path, change.after, change.mode, change.secret) for change in plan.files] == [
        (SERVER_CERT, "REPLICA1 CERT\n", "644", False),
        (HTPASSWD, "kolla:$2b$04$hash\n", "600", True),
    ]
    [key] = plan.commands
    assert key.startswith("# put the key deploy1 issued for this replica: server key in place")
    # The key only inside the script (base64, on stdin), never in a row, a diff or a plan's summary.
    assert "REPLICA1KEY" not in key and "REPLICA1KEY" not in plan.summary()
    assert all("REPLICA1KEY" not in change.diff() for change in plan.files)
    assert PASSWORD not in [change.path for change in plan.files]
    assert "make the registry's CA" not in plan.summary()


def test_a_replica_that_has_it_all_needs_nothing():
    served = Served("REPLICA1 CERT\n", KEY, "kolla:$2b$04$hash\n")
    digest = hashlib.sha256(KEY.encode()).hexdigest()
    facts = changed(docker_host(), files={SERVER_CERT: "REPLICA1 CERT\n", HTPASSWD: "kolla:$2b$04$hash\n"}, tls={"key_digest": digest})

    assert not tls.secure_registry(facts, replica_ctx(served)).changed


def test_a_replica_without_its_files_fails_naming_the_fix_and_a_check_run_says_the_deployment_host_makes_them():
    failed = tls.secure_registry(docker_host(), replica_ctx(Served()))
    assert failed.error == (
        "no its certificate and the login file from deploy1: run fab deploy-host with deploy1 (/srv/kolla/hosts.yaml)"
    )

    checked = tls.secure_registry(docker_host(), replica_ctx(Served(), modes=Modes(check=True)))
    assert checked.error is None and checked.changed
    assert checked.summary().startswith("write its certificate and the login file from deploy1 (made by deploy1's run)")

    unreachable = tls.secure_registry(docker_host(), replica_ctx(Served(problem="cannot read them on deploy1: refused")))
    assert unreachable.error == "no its certificate and the login file from deploy1: cannot read them on deploy1: refused"


def test_with_the_operator_s_files_a_replica_gets_them_and_the_one_login_file(tmp_path):
    for name, text in (("ca.crt", "CA\n"), ("server.crt", "OWN CERT\n"), ("server.key", "OWN KEY\n")):
        (tmp_path / name).write_text(text)
    own = TlsFiles(str(tmp_path / "server.crt"), str(tmp_path / "server.key"), str(tmp_path / "ca.crt"))
    settings = {**SECURE, "tls": "files", "tls_files": own}

    plan = tls.secure_registry(docker_host(), replica_ctx(Served(htpasswd="kolla:x\n"), settings))

    assert [change.path for change in plan.files] == [CA_CERT, SERVER_CERT, HTPASSWD]
    assert headers(plan) == ["# put the operator's server key in place (a secret: 0600, content not shown)"]


def test_deploy_host_gives_each_replica_its_own_files_and_its_check_pulls_without_pushing():
    served = {"replica1": Served("REPLICA1 CERT\n", KEY, "kolla:$2b$04$hash\n"), "replica2": Served("R2\n", "K2", "h")}
    action = DeploySteps("deploy-host", DEPLOY_STEPS, verify=True, served=served)
    ctx = replace(make_ctx(SECURE, address=REGISTRY_IP), ca="CA PEM\n", password="pull-password")
    checking = replace(ctx, modes=Modes(check=True))
    facts = changed(docker_host(), container=container())

    run = run_on_host(action, facts, checking, host=REPLICAS[0])

    rows = {row.step: row for row in run.outcomes}
    assert rows["secure-registry"].status == CHANGED, rows["secure-registry"]
    assert f"write {SERVER_CERT}" in rows["secure-registry"].message and "REPLICA1" not in rows["secure-registry"].message
    assert run.ctx.served == served["replica1"]
    # Its check: the probe pulled through its own instance, never pushed (the deployment host's writer did).
    replica = action.context(replace(ctx, host_name="replica1", registry_address="192.0.2.21"), REPLICAS[0])
    check = action.check(facts, replica).script
    assert "registry-writer" not in check and "docker push" not in check
    assert "docker pull 192.0.2.21:4000/kolla-registry/probe:latest" in check
    # The deployment host itself gets no replica's files, and its check pushes through the writer.
    deploy = action.context(replace(ctx, host_name="deploy1"), Host("deploy1", REGISTRY_IP))
    assert deploy.served is None and "registry-writer" in action.check(facts, deploy).script


def test_served_are_read_from_the_deployment_host_s_files():
    ctx = deploy_ctx()
    files = {HTPASSWD: "kolla:h\n", replica_cert("replica1"): "C1", replica_key("replica1"): "K1"}

    served = replica_tls.served_from_facts(ctx.inventory, changed(docker_host(), files=files))

    assert served == {"replica1": Served("C1", "K1", "kolla:h\n"), "replica2": Served("", "", "kolla:h\n")}
    assert "K1" not in repr(served["replica1"]) and "kolla:h" not in repr(served["replica1"])


def test_a_replica_never_makes_a_ca_nor_a_key_and_without_its_files_stops_before_anything_changes():
    action = DeploySteps("deploy-host", DEPLOY_STEPS, verify=True)
    ctx = replace(make_ctx(SECURE, address=REGISTRY_IP), ca="CA PEM\n", password="pw")

    run = run_on_host(action, changed(docker_host(), container=container()), ctx, host=REPLICAS[0])

    assert not any(CA_KEY in script or "openssl genrsa" in script for script in run.scripts)
    assert [(row.step, row.status) for row in run.outcomes][-1] == ("secure-registry", FAILED)
    assert not any(SERVER_KEY in script for script in run.scripts[1:])


def test_when_the_deployment_host_cannot_be_read_each_replica_says_why_and_plain_replicas_need_nothing():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    ctx = make_ctx(SECURE)
    inventory = replace(ctx.inventory, deploy_host=Host("deploy1", "127.0.0.1", port=port))

    served = RegistryAccess(inventory).served()

    assert set(served) == {"replica1", "replica2"}
    assert served["replica1"].problem == f"cannot read them on deploy1: SSH connection to root@127.0.0.1:{port} refused"
    plan = tls.secure_registry(docker_host(), replica_ctx(served["replica1"]))
    assert plan.error.endswith(f"SSH connection to root@127.0.0.1:{port} refused")
    plain = replace(inventory, registry=replace(inventory.registry, tls="off", auth="off"))
    assert RegistryAccess(plain).served() == {}
