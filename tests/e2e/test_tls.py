"""A registry a production cloud can trust, on the lab: TLS and login, migration from the insecure one, renewal."""

from __future__ import annotations

import json
import re

import pytest

from fabfile.registry.paths import PASSWORD, SERVER_CERT

from .conftest import ensure_deployed, inventory_variant, registry_of, reset_targets

pytestmark = pytest.mark.e2e

SECURE = {"tls": "self-signed", "auth": "htpasswd"}
KEPT = "kolla-registry/kept:1"


def ca_on(registry: str) -> str:
    return f"/etc/docker/certs.d/{registry}/ca.crt"


def insecure_entries(hosts, name: str) -> list[str]:
    text = hosts.run(name, "cat /etc/docker/daemon.json 2>/dev/null || echo '{}'")
    return json.loads(text).get("insecure-registries", [])


def catalog(hosts, name: str, registry: str, password: str) -> list[str]:
    # The password through curl's stdin (-K -), never its command line.
    out = hosts.run(
        name,
        f"printf 'user = \"kolla:%s\"\\n' '{password}' | curl -sS -K - --cacert {ca_on(registry)} "
        f"https://{registry}/v2/_catalog",
    )
    return json.loads(out)["repositories"]


@pytest.fixture
def secure_lab(lab, hosts, fab, tmp_path):
    """The lab's inventory with a TLS registry and a login; the plain registry again afterwards."""
    inventory = inventory_variant(lab.inventory, tmp_path, registry=SECURE)
    yield inventory
    # Back to the procedure's registry, as every other test expects it.
    ensure_deployed(fab)
    for name in [host.name for host in hosts.inventory.targets]:
        hosts.run(name, "rm -rf /etc/docker/certs.d", check=False)


def test_a_live_cloud_moves_to_tls_and_login_without_restarting_anything(
    lab, hosts, fab, secure_lab, tmp_path
):
    ensure_deployed(fab)
    registry = registry_of(hosts)
    # A cloud that never had a secure registry: no CA, no login yet.
    hosts.run("deploy1", "rm -rf /etc/kolla-registry")
    reset_targets(hosts, ["node1"])
    for folder in ("plain", "node1"):
        (tmp_path / folder).mkdir()
    plain = inventory_variant(lab.inventory, tmp_path / "plain", targets=["node1"])
    assert fab("configure-targets", inventory=plain).code == 0
    hosts.start_workload("node1")
    workload, dockerd = hosts.containers("node1"), hosts.docker_pid("node1")
    hosts.run(
        "deploy1",
        f"docker tag {registry}/kolla-registry/probe:latest {registry}/{KEPT} && docker push {registry}/{KEPT}",
    )

    deployed = fab("deploy-host", inventory=secure_lab)
    assert deployed.code == 0, deployed.output
    [secured] = [
        line for line in deployed.output.splitlines() if line.startswith("deploy1 | secure-registry |")
    ]
    assert (
        "CHANGED" in secured
        and "make the registry's CA" in secured
        and "make the registry's server" in secured
    )
    only_node1 = inventory_variant(secure_lab, tmp_path / "node1", targets=["node1"])
    moved = fab("configure-targets", inventory=only_node1)
    assert moved.code == 0, moved.output
    assert "node1 | configure-targets | CHANGED" in moved.output

    assert hosts.containers("node1") == workload and hosts.docker_pid("node1") == dockerd
    assert registry not in insecure_entries(hosts, "node1")
    assert registry not in insecure_entries(hosts, "deploy1")
    password = hosts.run("deploy1", f"cat {PASSWORD}")
    assert "kolla-registry/kept" in catalog(hosts, "node1", registry, password)
    assert password not in moved.output + deployed.output
    again = fab("configure-targets", inventory=only_node1)
    assert again.code == 0 and "node1 | configure-targets | OK" in again.output, again.output


def test_fresh_targets_pull_over_verified_tls_with_a_login(lab, hosts, fab, secure_lab):
    registry = registry_of(hosts)
    assert fab("deploy-host", inventory=secure_lab).code == 0
    names = ["node2", "node3"]
    reset_targets(hosts, names)
    result = fab("configure-targets", inventory=secure_lab)
    assert result.code == 0, result.output
    for name in names:
        assert f"{name} | configure-targets | CHANGED" in result.output
        assert hosts.run(name, "cat /etc/docker/daemon.json 2>/dev/null || echo absent") == "absent"
        assert hosts.run(name, f"docker image inspect -f ok {registry}/kolla-registry/probe:latest") == "ok"
        # The chain verifies against the CA the node has; an anonymous push is refused.
        verified = hosts.run(
            name,
            f"echo | openssl s_client -connect {registry} -CAfile {ca_on(registry)} -verify_return_error 2>&1"
            " | grep -o 'Verify return code: [0-9]* ([a-z]*)'",
        )
        assert set(verified.splitlines()) == {"Verify return code: 0 (ok)"}
        refused = hosts.run(
            name,
            f"curl -s -o /dev/null -w '%{{http_code}}' --cacert {ca_on(registry)} "
            f"-X POST https://{registry}/v2/kolla-registry/anonymous/blobs/uploads/",
        )
        assert refused == "401"

    globals_yml = "/tmp/kolla-tls-test/globals.yml"
    hosts.run("deploy1", "rm -rf /tmp/kolla-tls-test")
    refused = fab("kolla-globals", "--path", globals_yml, inventory=secure_lab)
    assert refused.code == 1 and "passwords.yml: missing: run kolla-genpwd first" in refused.output
    # As kolla-genpwd leaves it: every key, the registry's empty.
    hosts.write("deploy1", "/tmp/kolla-tls-test/passwords.yml", "database_password: x\ndocker_registry_password:\n")
    wired = fab("kolla-globals", "--path", globals_yml, inventory=secure_lab)
    assert wired.code == 0, wired.output
    text = hosts.run("deploy1", f"cat {globals_yml}")
    assert "docker_registry_insecure: false" in text and 'docker_registry_username: "kolla"' in text
    assert 'docker_registry_ca: "/etc/kolla/certificates/kolla-registry-ca.crt"' in text
    password = hosts.run("deploy1", f"cat {PASSWORD}")
    assert f'docker_registry_password: "{password}"' in hosts.run(
        "deploy1", "cat /tmp/kolla-tls-test/passwords.yml"
    )
    assert hosts.run("deploy1", "stat -c %a /tmp/kolla-tls-test/passwords.yml") == "600"
    assert password not in wired.output


def test_a_certificate_near_its_end_is_renewed_and_targets_are_untouched(
    lab, hosts, fab, secure_lab, tmp_path
):
    registry = registry_of(hosts)
    assert fab("deploy-host", inventory=secure_lab).code == 0
    reset_targets(hosts, ["node4"])
    only_node4 = inventory_variant(secure_lab, tmp_path, targets=["node4"])
    assert fab("configure-targets", inventory=only_node4).code == 0
    # The server certificate re-signed to end in ten days, as if a year had passed.
    hosts.run(
        "deploy1",
        f"cd /etc/kolla-registry/tls && openssl x509 -in {SERVER_CERT} -signkey server.key -x509toreq -out /tmp/r.csr "
        f"2>/dev/null && openssl x509 -req -in /tmp/r.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 10 "
        f"-copy_extensions copy -out {SERVER_CERT} 2>/dev/null && docker restart registry >/dev/null",
    )
    status = fab("status", inventory=only_node4)
    # Ten days from the re-signing second: 9 whole days left, or 10 when both fall in the same second.
    assert "deploy1" in status.output and re.search(r"\b(9|10) days left, renew due", status.output)

    renewed = fab("deploy-host", inventory=secure_lab)
    assert renewed.code == 0, renewed.output
    assert re.search(r"deploy1 \| secure-registry \| CHANGED \| renew the server certificate \((9|10) days left\)",
                     renewed.output)  # fmt: skip
    untouched = fab("configure-targets", inventory=only_node4)
    assert untouched.code == 0 and "node4 | configure-targets | OK" in untouched.output, untouched.output
    hosts.run("node4", f"docker rmi {registry}/kolla-registry/probe:latest")
    assert fab("configure-targets", inventory=only_node4).code == 0
    assert hosts.run("node4", f"docker image inspect -f ok {registry}/kolla-registry/probe:latest") == "ok"
