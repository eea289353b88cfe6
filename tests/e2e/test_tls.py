"""A registry a production cloud can trust, on the lab: TLS and login, migration from the insecure one,
renewal, an old CA re-issued, a TLS node never silently downgraded.

Every scenario runs on two clouds: Debian 12 (deploy1 and bookworm nodes: Python 3.11, Docker 20.10)
and Debian 13 (a trixie node as the deployment host and trixie nodes: Python 3.13, whose strict
certificate checks refused the CA this tool used to make, Docker 26 and podman 5).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from fabfile.registry.paths import CA_DIR, HTPASSWD, PASSWORD, SERVER_CERT, SERVER_KEY

from . import upstream
from .conftest import changed_steps, engine_of, ensure_deployed, inventory_variant, reset_targets, trusted

pytestmark = pytest.mark.e2e

SECURE = {"tls": "self-signed", "auth": "htpasswd"}
KEPT = "kolla-registry/kept:1"


@dataclass(frozen=True)
class Cloud:
    """A deployment host and its nodes on one Debian release, and the inventory that names them."""

    suite: str
    deploy: str
    # A Docker node that moves from the insecure registry; the fresh nodes (any engine).
    docker_node: str
    fresh: tuple[str, ...]
    address: str
    inventory: Path

    @property
    def registry(self) -> str:
        return f"{self.address}:4000"

    @property
    def nodes(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys((self.docker_node, *self.fresh)))


def of_profile(lab, profile: str) -> list[str]:
    return [name for name in lab.targets if lab.profile(name) == profile]


@pytest.fixture(scope="module", params=["bookworm", "trixie"])
def cloud(request, lab, tmp_path_factory):
    """Debian 12: deploy1 and three bookworm nodes. Debian 13: a trixie-docker node deploys (it has Docker
    26 already), another trixie-docker node and the trixie-podman node pull; all three are recreated after."""
    folder = tmp_path_factory.mktemp(request.param)
    if request.param == "bookworm":
        nodes = of_profile(lab, "bookworm-docker")[:3]
        assert len(nodes) == 3, "the suite's lab has three bookworm-docker nodes"
        inventory = inventory_variant(lab.inventory, folder, targets=nodes)
        yield Cloud("bookworm", "deploy1", nodes[0], tuple(nodes[1:]), lab.node_ip("deploy1"), inventory)
        return
    docker_nodes, podman_nodes = of_profile(lab, "trixie-docker"), of_profile(lab, "trixie-podman")
    assert len(docker_nodes) >= 2 and podman_nodes, "the suite's lab has two trixie-docker nodes and a trixie-podman one"
    deploy, node, podman = docker_nodes[-1], docker_nodes[0], podman_nodes[0]

    def deploy_from_trixie(data: dict) -> None:
        data["deploy_host"] = {"name": deploy, "address": lab.node_ip(deploy)}

    inventory = inventory_variant(lab.inventory, folder, targets=[node, podman], edit=deploy_from_trixie)
    try:
        yield Cloud("trixie", deploy, node, (node, podman), lab.node_ip(deploy), inventory)
    finally:
        for name in (deploy, node, podman):
            lab.reset_node(name)


@pytest.fixture
def secure(cloud, hosts, fab, tmp_path):
    """The cloud's inventory with a TLS registry and a login; on deploy1, the plain registry again afterwards."""
    yield inventory_variant(cloud.inventory, tmp_path, registry=SECURE)
    if cloud.deploy == "deploy1":
        # Back to the procedure's registry, as every other test expects it.
        ensure_deployed(fab)
        for name in [host.name for host in hosts.inventory.targets]:
            hosts.run(name, "rm -rf /etc/docker/certs.d /etc/containers/certs.d", check=False)


def ca_on(hosts, name: str, registry: str) -> str:
    folder = "/etc/containers/certs.d" if engine_of(hosts, name) == "podman" else "/etc/docker/certs.d"
    return f"{folder}/{registry}/ca.crt"


def insecure_entries(hosts, name: str) -> list[str]:
    text = hosts.run(name, "cat /etc/docker/daemon.json 2>/dev/null || echo '{}'")
    return json.loads(text).get("insecure-registries", [])


def catalog(hosts, name: str, registry: str, password: str) -> list[str]:
    # The password through curl's stdin (-K -), never its command line.
    out = hosts.run(
        name,
        f"printf 'user = \"kolla:%s\"\\n' '{password}' | curl -sS -K - --cacert {ca_on(hosts, name, registry)} "
        f"https://{registry}/v2/_catalog",
    )
    return json.loads(out)["repositories"]


def status_rows(fab, inventory: Path) -> dict[str, dict]:
    """status --json, each host's row by name."""
    result = fab("status", "--json", inventory=inventory)
    document, _ = json.JSONDecoder().raw_decode(result.output[result.output.index("{") :])
    return {row["host"]: row for row in document["hosts"]}


def test_a_live_cloud_moves_to_tls_and_login_without_restarting_anything(hosts, fab, cloud, secure, tmp_path):
    registry, node = cloud.registry, cloud.docker_node
    for folder in ("plain", "node"):
        (tmp_path / folder).mkdir()
    plain = inventory_variant(cloud.inventory, tmp_path / "plain", targets=[node])
    # A cloud that never had a secure registry: no CA, no login yet.
    hosts.run(cloud.deploy, "rm -rf /etc/kolla-registry")
    procedure = fab("deploy-host", inventory=plain)
    assert procedure.code == 0, procedure.output
    # The recap names what such a registry is, and the setting that secures it.
    assert (
        f"{cloud.deploy} | secure-registry | OK | plain HTTP, no login: anyone who reaches its port can pull any "
        "image, and anyone on the way can swap what nodes pull; set registry: {tls: self-signed, auth: htpasswd} "
        "for TLS and a login"
    ) in procedure.output
    reset_targets(hosts, [node])
    assert fab("configure-targets", inventory=plain).code == 0
    hosts.start_workload(node)
    workload, dockerd = hosts.containers(node), hosts.docker_pid(node)
    # Into the registry the way images get there: nothing pushes to it, sync-images copies through the writer.
    upstream.synced(fab, tmp_path / "plain", [KEPT], inventory=plain)

    deployed = fab("deploy-host", inventory=secure)
    assert deployed.code == 0, deployed.output
    [secured] = [line for line in deployed.output.splitlines() if line.startswith(f"{cloud.deploy} | secure-registry |")]
    assert "CHANGED" in secured and "make the registry's CA" in secured and "make the registry's server" in secured
    only_node = inventory_variant(secure, tmp_path / "node", targets=[node])
    moved = fab("configure-targets", inventory=only_node)
    assert moved.code == 0, moved.output
    assert f"{node} | configure-targets | CHANGED" in moved.output

    assert hosts.containers(node) == workload and hosts.docker_pid(node) == dockerd
    assert registry not in insecure_entries(hosts, node) and not trusted(hosts, node, registry)
    assert registry not in insecure_entries(hosts, cloud.deploy)
    password = hosts.run(cloud.deploy, f"cat {PASSWORD}")
    assert "kolla-registry/kept" in catalog(hosts, node, registry, password)
    assert password not in moved.output + deployed.output
    again = fab("configure-targets", inventory=only_node)
    assert again.code == 0 and f"{node} | configure-targets | OK" in again.output, again.output


def test_fresh_targets_pull_over_verified_tls_with_a_login(hosts, fab, cloud, secure):
    registry = cloud.registry
    assert fab("deploy-host", inventory=secure).code == 0
    names = list(cloud.fresh)
    for name in names:
        # Fresh: no CA nor probe image left from an earlier scenario on this node.
        hosts.run(name, f"rm -rf /etc/docker/certs.d; docker rmi {registry}/kolla-registry/probe:latest", check=False)
    reset_targets(hosts, names)
    result = fab("configure-targets", inventory=secure)
    assert result.code == 0, result.output
    for name in names:
        engine = engine_of(hosts, name)
        assert f"{name} | configure-targets | CHANGED" in result.output
        assert hosts.run(name, "cat /etc/docker/daemon.json 2>/dev/null || echo absent") == "absent"
        assert hosts.run(name, f"{engine} image inspect --format ok {registry}/kolla-registry/probe:latest") == "ok"
        # The chain verifies against the CA the node has; an anonymous push is refused.
        ca = ca_on(hosts, name, registry)
        verified = hosts.run(
            name,
            f"echo | openssl s_client -connect {registry} -CAfile {ca} -verify_return_error 2>&1"
            " | grep -o 'Verify return code: [0-9]* ([a-z]*)'",
        )
        assert set(verified.splitlines()) == {"Verify return code: 0 (ok)"}
        refused = hosts.run(
            name,
            f"curl -s -o /dev/null -w '%{{http_code}}' --cacert {ca} "
            f"-X POST https://{registry}/v2/kolla-registry/anonymous/blobs/uploads/",
        )
        assert refused == "401"
    # What every host's Python (3.13 on Debian 13, strict) makes of the registry: status asks from each.
    rows = status_rows(fab, secure)
    assert all(rows[name]["registry_answers"] for name in (cloud.deploy, *names)), rows

    globals_yml = "/tmp/kolla-tls-test/globals.yml"
    hosts.run(cloud.deploy, "rm -rf /tmp/kolla-tls-test")
    refused = fab("kolla-globals", "--path", globals_yml, inventory=secure)
    assert refused.code == 1 and "passwords.yml: missing: run kolla-genpwd first" in refused.output
    # As kolla-genpwd leaves it: every key, the registry's empty.
    hosts.write(cloud.deploy, "/tmp/kolla-tls-test/passwords.yml", "database_password: x\ndocker_registry_password:\n")
    wired = fab("kolla-globals", "--path", globals_yml, inventory=secure)
    assert wired.code == 0, wired.output
    text = hosts.run(cloud.deploy, f"cat {globals_yml}")
    assert "docker_registry_insecure: false" in text and 'docker_registry_username: "kolla"' in text
    assert 'docker_registry_ca: "/etc/kolla/certificates/kolla-registry-ca.crt"' in text
    password = hosts.run(cloud.deploy, f"cat {PASSWORD}")
    assert f'docker_registry_password: "{password}"' in hosts.run(cloud.deploy, "cat /tmp/kolla-tls-test/passwords.yml")
    assert hosts.run(cloud.deploy, "stat -c %a /tmp/kolla-tls-test/passwords.yml") == "600"
    assert password not in wired.output


def test_a_certificate_near_its_end_is_renewed_and_targets_are_untouched(hosts, fab, cloud, secure, tmp_path):
    registry, node = cloud.registry, cloud.fresh[0]
    assert fab("deploy-host", inventory=secure).code == 0
    reset_targets(hosts, [node])
    only_node = inventory_variant(secure, tmp_path, targets=[node])
    assert fab("configure-targets", inventory=only_node).code == 0
    # The server certificate re-signed to end in ten days, as if a year had passed (in place: the
    # container mounts the file itself).
    hosts.run(
        cloud.deploy,
        f"cd /etc/kolla-registry && openssl x509 -in {SERVER_CERT} -signkey {SERVER_KEY} -x509toreq -out /tmp/r.csr "
        f"2>/dev/null && openssl x509 -req -in /tmp/r.csr -CA ca/ca.crt -CAkey ca/ca.key -CAcreateserial -days 10 "
        f"-copy_extensions copy -out {SERVER_CERT} 2>/dev/null && docker restart registry >/dev/null",
    )
    status = fab("status", inventory=only_node)
    # Ten days from the re-signing second: 9 whole days left, or 10 when both fall in the same second.
    assert cloud.deploy in status.output and re.search(r"\b(9|10) days left, renew due", status.output)

    renewed = fab("deploy-host", inventory=secure)
    assert renewed.code == 0, renewed.output
    assert re.search(
        rf"{cloud.deploy} \| secure-registry \| CHANGED \| renew the server certificate \((9|10) days left\)",
        renewed.output,
    )
    untouched = fab("configure-targets", inventory=only_node)
    assert untouched.code == 0 and f"{node} | configure-targets | OK" in untouched.output, untouched.output
    # The node's engine resolved the probe through the renewed certificate (a no-op downloads nothing).
    assert f"{registry} trusted; resolved probe" in untouched.output, untouched.output


def legacy_layout(registry: str) -> str:
    """Shell: the deployment host's TLS as versions before this one left it, from its current key pairs:
    the CA next to the server's files, neither certificate with keyUsage, the node's copy of the old CA."""
    address = registry.rsplit(":", 1)[0]
    return f"""set -e
cd /etc/kolla-registry
mv ca/ca.key tls/ca.key; mv ca/ca.srl tls/ca.srl 2>/dev/null || true; rm -rf ca
openssl req -x509 -new -key tls/ca.key -sha256 -days 3650 -subj '/CN=kolla-registry CA' -out tls/ca.crt
sans=$(openssl x509 -noout -ext subjectAltName -in tls/server.crt | tail -n +2 | tr -d ' ' | sed 's/IPAddress:/IP:/g')
printf 'subjectAltName=%s\\nextendedKeyUsage=serverAuth\\n' "$sans" > /tmp/legacy.ext
openssl req -new -key tls/server.key -subj '/CN={address}' -out /tmp/legacy.csr
openssl x509 -req -in /tmp/legacy.csr -CA tls/ca.crt -CAkey tls/ca.key -CAcreateserial -days 365 -sha256 \
  -extfile /tmp/legacy.ext -out tls/server.crt 2>/dev/null
cp tls/ca.crt /etc/docker/certs.d/{registry}/ca.crt
docker restart registry >/dev/null
"""


def test_an_old_ca_is_moved_out_of_the_containers_sight_reissued_once_and_nodes_get_it(hosts, fab, cloud, secure, tmp_path):
    registry, node = cloud.registry, cloud.docker_node
    inventory = inventory_variant(secure, tmp_path, targets=[node])
    assert fab("deploy-host", inventory=inventory).code == 0
    reset_targets(hosts, [node])
    hosts.run(cloud.deploy, legacy_layout(registry))
    assert fab("configure-targets", inventory=inventory).code == 0
    if cloud.suite == "trixie":
        # What Debian 13's Python made of that CA: every registry query from every host refused.
        rows = status_rows(fab, inventory)
        assert "CERTIFICATE_VERIFY_FAILED" in rows[cloud.deploy]["registry_error"], rows
        assert "CERTIFICATE_VERIFY_FAILED" in rows[node]["registry_error"], rows
    dockerd = hosts.docker_pid(node)

    deployed = fab("deploy-host", inventory=inventory)

    assert deployed.code == 0, deployed.output
    [secured] = [line for line in deployed.output.splitlines() if line.startswith(f"{cloud.deploy} | secure-registry |")]
    assert "move the CA out of the registry container's folder" in secured
    assert "re-issue the registry's CA with its key usage" in secured
    assert "re-issue the server certificate with its key usage" in secured
    # The network-facing container sees the server's certificate and key, nothing else of TLS.
    mounts = hosts.run(cloud.deploy, "docker inspect -f '{{range .Mounts}}{{.Source}} {{end}}' registry").split()
    assert sorted(source for source in mounts if source.startswith("/etc/")) == sorted(
        [HTPASSWD, SERVER_CERT, SERVER_KEY]
    )
    assert hosts.run(cloud.deploy, f"stat -c %a {CA_DIR}; ls /etc/kolla-registry/tls") == "700\nserver.crt\nserver.key"
    assert changed_steps(fab("deploy-host", inventory=inventory).output) == []
    moved = fab("configure-targets", inventory=inventory)
    assert moved.code == 0 and f"{node} | configure-targets | CHANGED | write /etc/docker/certs.d/{registry}/ca.crt" in moved.output
    assert hosts.docker_pid(node) == dockerd
    rows = status_rows(fab, inventory)
    assert rows[cloud.deploy]["registry_answers"] and rows[node]["registry_answers"], rows
    assert rows[node]["tls"] == "verified"


def test_a_tls_node_is_never_silently_downgraded(hosts, fab, cloud, secure, tmp_path):
    registry, node = cloud.registry, cloud.docker_node
    inventory = inventory_variant(secure, tmp_path, targets=[node])
    assert fab("deploy-host", inventory=inventory).code == 0
    reset_targets(hosts, [node])
    assert fab("configure-targets", inventory=inventory).code == 0
    try:
        # This tool's own entry, in its http:// form: dockerd skips certificate checks; it goes, with a reload.
        hosts.write(node, "/etc/docker/daemon.json", json.dumps({"insecure-registries": [f"http://{registry}"]}))
        hosts.run(node, "systemctl reload docker && sleep 1")
        assert trusted(hosts, node, registry)
        dockerd = hosts.docker_pid(node)
        mended = fab("configure-targets", inventory=inventory)
        assert mended.code == 0 and f"{node} | configure-targets | CHANGED" in mended.output, mended.output
        assert not trusted(hosts, node, registry) and hosts.docker_pid(node) == dockerd
        assert insecure_entries(hosts, node) == []

        # A CIDR that covers the registry: the operator's, so named, never edited.
        cidr = json.dumps({"insecure-registries": ["10.0.0.0/8"]})
        hosts.write(node, "/etc/docker/daemon.json", cidr)
        hosts.run(node, "systemctl reload docker && sleep 1")
        refused = fab("configure-targets", inventory=inventory)
        assert refused.code == 1, refused.output
        [row] = [line for line in refused.output.splitlines() if line.startswith(f"{node} | configure-targets |")]
        assert "FAILED" in row and "10.0.0.0/8 in /etc/docker/daemon.json insecure-registries" in row
        assert hosts.run(node, "cat /etc/docker/daemon.json") == cidr
        rows = status_rows(fab, inventory)
        assert rows[node]["tls"].startswith("NOT checked: treated as insecure by 10.0.0.0/8"), rows[node]
        assert rows[node]["trusted"] is False
        shown = fab("status", inventory=inventory).output
        assert "NOT checked" in shown
    finally:
        hosts.run(node, "rm -f /etc/docker/daemon.json && systemctl restart docker")
