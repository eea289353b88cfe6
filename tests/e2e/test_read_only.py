"""Nodes only read, on one registry with TLS and a login: deploy1 and node1 (Debian 12, Docker 20.10).

A registry a version before made (writable) is recreated read-only, keeping its images. From the node, with
every credential it has (the login pull-images gave it, the one kolla-globals writes for kolla-ansible),
``docker push`` and raw HTTP writes are refused; the deployment host writes through its writer only:
sync-images, verify-registry's probe, prune-registry, whose collection leaves the registry serving. A
no-op configure-targets proves the node's trust through dockerd without downloading anything.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from fabfile.registry.paths import HTPASSWD, PASSWORD

from . import upstream
from .conftest import ensure_deployed, inventory_variant, registry_of, reset_targets

pytestmark = pytest.mark.e2e

NODE = "node1"
SECURE = {"tls": "self-signed", "auth": "htpasswd"}
BEFORE = "kolla-registry/before:1"
SYNCED = "openstack.kolla/read-only-e2e"
ACCEPT = "application/vnd.docker.distribution.manifest.v2+json"
# The node's own login, as docker keeps it: curl's config from ~/.docker/config.json (never a command line).
NODE_LOGIN = (
    "python3 -c 'import base64, json, sys; auths = json.load(open(\"/root/.docker/config.json\"))[\"auths\"]; "
    "print(\"user = \\\"%s\\\"\" % base64.b64decode(auths[sys.argv[1]][\"auth\"]).decode())' {registry} > /root/.e2e-login"
)


def writable_registry() -> str:
    """Shell: deploy1's registry as versions before this one ran it: deletes and pushes taken, no read-only mode."""
    return (
        "docker rm -f registry >/dev/null 2>&1; rm -rf /etc/kolla-registry; "
        "docker run -d --network host -e REGISTRY_HTTP_ADDR=0.0.0.0:4000 --restart=always --name registry "
        "-v registry:/var/lib/registry -e REGISTRY_STORAGE_DELETE_ENABLED=true "
        "--label kolla-registry.spec=0123456789abcdef registry:2 >/dev/null && sleep 2"
    )


@pytest.fixture(scope="module")
def secure(lab, fab, hosts, tmp_path_factory):
    """node1's inventory with a TLS registry and a login; the plain registry and a fresh node1 again after."""
    folder = tmp_path_factory.mktemp("read-only")
    inventory = inventory_variant(Path(lab.inventory), folder, targets=[NODE], registry=SECURE)
    try:
        yield inventory, folder
    finally:
        hosts.run(NODE, "rm -f /root/.docker/config.json /root/.e2e-login /tmp/e2e-codes /tmp/e2e-stop", check=False)
        hosts.run(NODE, f"docker images -q '*/{SYNCED}' | xargs -r docker rmi -f >/dev/null", check=False)
        hosts.run(NODE, "rm -rf /etc/docker/certs.d", check=False)
        ensure_deployed(fab)


@pytest.fixture(scope="module")
def migrated(secure, fab, hosts):
    """A writable registry holding an image (pushed the old way), then deploy-host with TLS and a login."""
    registry = registry_of(hosts)
    ensure_deployed(fab)  # deploy1's Docker trusts the plain registry, to push to it the old way
    hosts.run("deploy1", writable_registry())
    hosts.run(
        "deploy1",
        f"d=$(mktemp -d); echo before > $d/f; tar -C $d -c f | docker import - {registry}/{BEFORE} >/dev/null; "
        f"rm -rf $d; docker push {registry}/{BEFORE} >/dev/null",
    )
    result = fab("deploy-host", inventory=secure[0])
    assert result.code == 0, result.output
    return result


@pytest.fixture(scope="module")
def configured(migrated, secure, fab, hosts):
    """node1 trusts the registry and holds a synced image, pulled with the login pull-images gives it."""
    inventory, folder = secure
    reset_targets(hosts, [NODE])
    hosts.run(NODE, "rm -rf /etc/docker/certs.d /root/.docker/config.json")
    done = fab("configure-targets", inventory=inventory)
    assert done.code == 0, done.output
    upstream.start()
    upstream.release(SYNCED, "old", 2_000_000, "2024-01-01T00:00:00Z")
    upstream.release(SYNCED, "new", 2_000_000, "2024-02-01T00:00:00Z")
    both = upstream.images_file(folder, [f"{SYNCED}:old", f"{SYNCED}:new"], "new", "both.yaml")
    synced = fab("sync-images", "--images", str(both), inventory=inventory)
    assert synced.code == 0, synced.output
    only_new = upstream.images_file(folder, [f"{SYNCED}:new"], "new", "new.yaml")
    pulled = fab("pull-images", "--images", str(only_new), inventory=inventory)
    assert pulled.code == 0, pulled.output
    hosts.run(NODE, NODE_LOGIN.format(registry=registry_of(hosts)))
    return synced, only_new


def curl_as_node(hosts, method: str, path: str, login: bool = True) -> str:
    """An HTTP write from node1 to the registry, with its own login (or none): the status code."""
    registry = registry_of(hosts)
    auth = "-K /root/.e2e-login " if login else ""
    return hosts.run(
        NODE,
        f"curl -s -o /dev/null -w '%{{http_code}}' --cacert /etc/docker/certs.d/{registry}/ca.crt {auth}"
        f"-X {method} -H 'Content-Type: {ACCEPT}' --data-binary '{{}}' https://{registry}{path}",
    )


def catalog(hosts) -> list[str]:
    registry = registry_of(hosts)
    out = hosts.run(
        NODE, f"curl -sS --cacert /etc/docker/certs.d/{registry}/ca.crt -K /root/.e2e-login https://{registry}/v2/_catalog"
    )
    return json.loads(out)["repositories"]


def test_a_writable_registry_made_before_is_recreated_read_only_keeping_its_images(migrated, configured, hosts):
    [row] = [line for line in migrated.output.splitlines() if line.startswith("deploy1 | create-registry |")]
    assert "CHANGED" in row and "recreated read-only, keeping its images: no node can push any more" in row
    assert "kolla-registry/before" in catalog(hosts)
    assert "deploy1 | verify-registry | OK" in migrated.output
    assert "kolla-registry/probe:latest through the writer" in migrated.output


def test_from_a_node_with_every_credential_it_has_no_push_gets_through(configured, secure, fab, hosts):
    registry = registry_of(hosts)
    # The node holds the login pull-images (and kolla-ansible) gave it: the only one there is.
    password = hosts.run("deploy1", f"cat {PASSWORD}")
    assert password in hosts.run(NODE, "cat /root/.e2e-login")
    assert hosts.run("deploy1", f"cut -d: -f1 {HTPASSWD}") == "kolla"
    before = catalog(hosts)

    pushed = hosts.run(
        NODE,
        f"d=$(mktemp -d); echo x > $d/f; tar -C $d -c f | docker import - {registry}/{SYNCED}:pushed >/dev/null; "
        f"docker push {registry}/{SYNCED}:pushed 2>&1; echo exit=$?; rm -rf $d; docker rmi {registry}/{SYNCED}:pushed",
        check=False,
    )

    assert "exit=0" not in pushed, pushed
    # Raw HTTP with the same login: every way to write refused as a method (405), after the login (not 401).
    # (No upload can start, so none can be continued: PATCH or PUT of an upload has nothing to name.)
    for method, path in (
        ("POST", f"/v2/{SYNCED}/blobs/uploads/"),
        ("POST", f"/v2/{SYNCED}-copy/blobs/uploads/?mount=sha256:{'0' * 64}&from={SYNCED}"),
        ("PUT", f"/v2/{SYNCED}/manifests/new"),
        ("DELETE", f"/v2/{SYNCED}/manifests/new"),
        ("DELETE", f"/v2/{SYNCED}/blobs/sha256:{'0' * 64}"),
    ):
        assert curl_as_node(hosts, method, path) == "405", (method, path)
    assert curl_as_node(hosts, "POST", f"/v2/{SYNCED}/blobs/uploads/", login=False) == "401"
    assert catalog(hosts) == before
    # What the node pulled is what sync-images copied, not what it tried to push.
    digest = hosts.run(NODE, f"curl -sSI --cacert /etc/docker/certs.d/{registry}/ca.crt -K /root/.e2e-login "
                             f"-H 'Accept: {ACCEPT}' https://{registry}/v2/{SYNCED}/manifests/new")  # fmt: skip
    assert "docker-content-digest" in digest.lower()


def test_kolla_globals_gives_kolla_ansible_the_pull_identity(configured, secure, fab, hosts):
    inventory, _ = secure
    hosts.run("deploy1", "rm -rf /tmp/kolla-ro-test && mkdir -p /tmp/kolla-ro-test")
    hosts.write("deploy1", "/tmp/kolla-ro-test/passwords.yml", "database_password: x\ndocker_registry_password:\n")

    wired = fab("kolla-globals", "--path", "/tmp/kolla-ro-test/globals.yml", inventory=inventory)

    assert wired.code == 0, wired.output
    password = hosts.run("deploy1", f"cat {PASSWORD}")
    assert 'docker_registry_username: "kolla"' in hosts.run("deploy1", "cat /tmp/kolla-ro-test/globals.yml")
    assert f'docker_registry_password: "{password}"' in hosts.run("deploy1", "cat /tmp/kolla-ro-test/passwords.yml")
    # That identity is the node's (see above): it pulls, and no write gets through with it.
    assert password in hosts.run(NODE, "cat /root/.e2e-login")


def test_writes_go_through_a_writer_only_root_reaches_which_is_gone_after(configured, hosts):
    synced, _ = configured
    assert "2 copied" in synced.output
    assert hosts.run("deploy1", "docker ps -aq --filter name=registry-writer") == ""
    assert hosts.run("deploy1", "stat -c '%a %U' /run/kolla-registry") == "700 root"
    # The registry nodes reach: read-only, on the volume, its port the only one; the writer had none.
    environment = hosts.run("deploy1", "docker inspect -f '{{json .Config.Env}}' registry")
    assert 'REGISTRY_STORAGE_MAINTENANCE_READONLY={\\"enabled\\":true}' in environment


def test_a_no_op_configure_targets_resolves_the_probe_and_downloads_nothing(configured, secure, fab, hosts):
    since = hosts.run(NODE, "date +%s")

    again = fab("configure-targets", inventory=secure[0])

    assert again.code == 0, again.output
    assert f"{NODE} | configure-targets | OK | {registry_of(hosts)} trusted; resolved probe" in again.output
    pulls = hosts.run(NODE, f"docker events --since {since} --until $(date +%s) --filter type=image --format '{{{{.Action}}}}'")
    assert "pull" not in pulls.split(), pulls


def test_prune_deletes_through_the_writer_and_collects_while_the_registry_serves_the_node(configured, secure, fab, hosts):
    inventory, _ = secure
    _, only_new = configured
    registry = registry_of(hosts)
    container = hosts.run("deploy1", "docker inspect -f '{{.Id}}' registry")
    # The node reads the kept release's manifest five times a second for as long as the prune runs.
    hosts.run(
        NODE,
        "rm -f /tmp/e2e-codes /tmp/e2e-stop; setsid nohup sh -c 'while [ ! -e /tmp/e2e-stop ]; do "
        f"curl -s -o /dev/null -w \"%{{http_code}}\\n\" --cacert /etc/docker/certs.d/{registry}/ca.crt "
        f"-K /root/.e2e-login -H \"Accept: {ACCEPT}\" https://{registry}/v2/{SYNCED}/manifests/new >> /tmp/e2e-codes; "
        "sleep 0.2; done' >/dev/null 2>&1 < /dev/null &",
    )
    time.sleep(1)
    try:
        pruned = fab("prune-registry", "--keep", "0", "--images", str(only_new), inventory=inventory)
    finally:
        time.sleep(1)
        hosts.run(NODE, "touch /tmp/e2e-stop")

    assert pruned.code == 0, pruned.output
    assert "deploy1 | prune-registry | CHANGED | 1 repositories: 1 tags deleted (1 manifests); freed " in pruned.output
    codes = hosts.run(NODE, "cat /tmp/e2e-codes").split()
    assert len(codes) >= 5 and set(codes) == {"200"}, codes
    assert hosts.run("deploy1", "docker inspect -f '{{.Id}}' registry") == container
    assert hosts.run("deploy1", "docker ps -aq --filter name=registry-writer --filter name=registry-gc") == ""
    tags = json.loads(hosts.run(
        NODE, f"curl -sS --cacert /etc/docker/certs.d/{registry}/ca.crt -K /root/.e2e-login https://{registry}/v2/{SYNCED}/tags/list"
    ))["tags"]  # fmt: skip
    assert tags == ["new"]
