"""Replicas with TLS and a login on one S3 store: the deployment host and two replicas, migrated from plain ones.

The lab of ``test_replicas`` (store1 running SeaweedFS, replica1 and replica2), first plain, then moved to
``tls: self-signed`` and ``auth: htpasswd``: one CA on deploy1 issues every instance's certificate (naming
the one name, its address and its name), one login file and one http.secret for all. Nodes move to TLS
without a restart, no instance takes a push from anyone, what sync-images copied pulls through every
instance, the failover test plain replicas pass passes, prune-registry collects the shared store once while
every instance serves, and a replica's certificate near its end is renewed from deploy1.
"""

from __future__ import annotations

import json
import re
from collections import Counter

import pytest

from fabfile.registry.paths import CA_CERT, ENV_FILE, HTPASSWD, PASSWORD, replica_cert
from tests.lab.store import HOSTNAME, down_replicas, replica_ip, up_replicas

from . import upstream
from .conftest import (
    UNMARK_HOSTS,
    Fab,
    Hosts,
    changed_steps,
    engine_of,
    ensure_deployed,
    inventory_variant,
    reset_targets,
)
from .test_replicas import (
    INSTANCES,
    failover_changes_only_hosts_lines,
    node_state,
    placement,
    pulls,
    push_refused,
)

pytestmark = pytest.mark.e2e

SECURE = {"tls": "self-signed", "auth": "htpasswd"}
NAME = f"{HOSTNAME}:4000"
SYNCED = "lab/secure-replicas"
IMAGE = f"{NAME}/{SYNCED}:new"


@pytest.fixture(scope="module")
def store_lab(lab, fab, hosts, tmp_path_factory):
    """The plain and the secure inventories of the lab with two replicas; the suite's lab restored after."""
    folder = tmp_path_factory.mktemp("secure-replicas")
    plain = up_replicas(2, folder / "plain" / "hosts.yaml")
    secure = inventory_variant(plain, folder, registry=SECURE)
    names = [host.name for host in hosts.inventory.targets]
    reset_targets(hosts, names)
    try:
        yield plain, secure, names, folder
    finally:
        down_replicas()
        for name in names:
            hosts.run(name, f"{UNMARK_HOSTS}; rm -rf /etc/docker/certs.d/{NAME} /etc/containers/certs.d/{NAME}; "
                            f"docker logout {NAME} >/dev/null 2>&1 || true", check=False)  # fmt: skip
        hosts.run("deploy1", f"rm -f {ENV_FILE}", check=False)
        ensure_deployed(fab)


@pytest.fixture(scope="module")
def rfab(store_lab) -> Fab:
    return Fab(store_lab[1])


@pytest.fixture(scope="module")
def rhosts(store_lab) -> Hosts:
    return Hosts(store_lab[1])


@pytest.fixture(scope="module")
def moved(store_lab, rfab):
    """Plain replicas first, every node configured on them; then deploy-host and configure-targets with TLS and login."""
    plain, _, _, _ = store_lab
    for step in ("deploy-host", "configure-targets"):
        done = Fab(plain)(step)
        assert done.code == 0, done.output
    deployed = rfab("deploy-host")
    assert deployed.code == 0, deployed.output
    configured = rfab("configure-targets")
    assert configured.code == 0, configured.output
    return deployed, configured


@pytest.fixture(scope="module")
def spread(moved, rhosts, store_lab):
    return placement(rhosts, store_lab[2])


@pytest.fixture(scope="module")
def synced(spread, rfab, store_lab):
    """Two releases synced through deploy1's writer into the store; every node pulled the new one (logged in)."""
    folder = store_lab[3]
    upstream.start()
    upstream.release(SYNCED, "old", 1_000_000, "2024-01-01T00:00:00Z")
    upstream.release(SYNCED, "new", 1_000_000, "2024-02-01T00:00:00Z")
    both = upstream.images_file(folder, [f"{SYNCED}:old", f"{SYNCED}:new"], "new", "both.yaml")
    done = rfab("sync-images", "--images", str(both))
    assert done.code == 0, done.output
    only_new = upstream.images_file(folder, [f"{SYNCED}:new"], "new", "new.yaml")
    pulled = rfab("pull-images", "--images", str(only_new))
    assert pulled.code == 0, pulled.output
    return only_new


def on_deploy1(rhosts, command: str) -> str:
    return rhosts.run("deploy1", command)


def test_deploy_host_runs_deploy1_first_then_every_replica_with_tls_and_the_login(moved):
    deployed, _ = moved
    lines = deployed.output.splitlines()
    # deploy1 ends (its CA issued the replicas' certificates, its writer pushed the probe) before any replica starts.
    done = next(i for i, line in enumerate(lines) if line.startswith("deploy1 | verify-registry | "))
    assert done < min(i for i, line in enumerate(lines) if line.startswith(("replica1 | ", "replica2 | ")))
    for name in INSTANCES:
        assert f"{name} | verify-registry | OK" in deployed.output
    [issued] = [line for line in deployed.output.splitlines() if line.startswith("deploy1 | secure-registry |")]
    assert "replica1: make the registry's server certificate" in issued and "replica2: make" in issued
    for name in ("replica1", "replica2"):
        [row] = [line for line in deployed.output.splitlines() if line.startswith(f"{name} | secure-registry |")]
        assert "CHANGED" in row and "write /etc/kolla-registry/tls/server.crt" in row and "put the key" in row
    # No key nor certificate body in the output.
    assert "BEGIN" not in deployed.output


def test_each_instance_s_certificate_names_the_one_name_its_address_and_name_and_every_instance_shares_the_login(
    moved, rhosts
):
    for name in ("replica1", "replica2"):
        address = replica_ip(name)
        sans = on_deploy1(rhosts, f"openssl x509 -noout -ext subjectAltName -in {replica_cert(name)} | tail -1")
        assert {f"DNS:{HOSTNAME}", f"IP Address:{address}", f"DNS:{name}"} == {s.strip() for s in sans.split(",")}
        for verify in (f"-verify_hostname {HOSTNAME}", f"-verify_ip {address}"):
            shown = on_deploy1(rhosts, f"echo | openssl s_client -connect {address}:4000 -CAfile {CA_CERT} {verify} "
                                       "-verify_return_error 2>&1 | grep -o 'Verify return code: [0-9]*'")  # fmt: skip
            assert set(shown.splitlines()) == {"Verify return code: 0"}, (name, verify)
        # The CA's key never left deploy1.
        assert rhosts.run(name, "ls /etc/kolla-registry/ca 2>/dev/null || echo none") == "none"
        assert rhosts.run(name, "stat -c %a /etc/kolla-registry/tls/server.key") == "600"
    for path in (HTPASSWD, ENV_FILE):
        digests = {rhosts.run(name, f"sha256sum {path} | cut -d' ' -f1") for name in INSTANCES}
        assert len(digests) == 1, path


def test_nodes_moved_to_tls_by_the_one_name_without_a_restart_and_spread_evenly(moved, spread, rhosts):
    _, configured = moved
    counts = Counter(spread.values())
    assert max(counts.values()) - min(counts.get(name, 0) for name in INSTANCES) <= 1
    for name in spread:
        if engine_of(rhosts, name) == "docker":
            config = json.loads(rhosts.run(name, "cat /etc/docker/daemon.json 2>/dev/null || echo '{}'"))
            assert NAME not in config.get("insecure-registries", [])
            assert rhosts.run(name, f"test -s /etc/docker/certs.d/{NAME}/ca.crt && echo yes") == "yes"
    assert "Docker restart" not in configured.output


def test_no_instance_takes_a_push_from_a_node_with_the_login_nor_from_its_own_host(synced, spread, rhosts):
    node = next(name for name in spread if engine_of(rhosts, name) == "docker")
    # pull-images logged the node in: the push goes with every credential the node has.
    assert NAME in rhosts.run(node, "cat /root/.docker/config.json")
    push_refused(rhosts, node, f"{NAME}/lab/pushed:1")
    password = on_deploy1(rhosts, f"cat {PASSWORD}")
    login = f"printf 'user = \"kolla:%s\"\\n' '{password}' > /root/.e2e-login"
    rhosts.run(node, login)
    try:
        for address in (rhosts.inventory.deploy_host.address, replica_ip("replica1"), replica_ip("replica2")):
            code = rhosts.run(
                node,
                f"curl -s -o /dev/null -w '%{{http_code}}' --cacert /etc/docker/certs.d/{NAME}/ca.crt "
                f"--resolve {NAME}:{address} -K /root/.e2e-login -X POST https://{NAME}/v2/lab/pushed/blobs/uploads/",
            )
            assert code == "405", address
    finally:
        rhosts.run(node, "rm -f /root/.e2e-login")
    # Each instance's host is logged in (its check pulled the probe with the login): refused there too.
    for instance, address in (("deploy1", rhosts.inventory.deploy_host.address), *((r, replica_ip(r)) for r in INSTANCES[1:])):
        push_refused(rhosts, instance, f"{address}:4000/lab/pushed:1")
    catalog = on_deploy1(rhosts, f"curl -sS --cacert {CA_CERT} -u kolla:{password} https://{rhosts.inventory.deploy_host.address}:4000/v2/_catalog")
    assert "lab/pushed" not in json.loads(catalog)["repositories"]


def test_what_sync_copied_through_deploy1_pulls_on_the_nodes_of_every_instance(synced, spread, rhosts):
    on_replicas = [name for name, instance in spread.items() if instance != "deploy1"]
    assert on_replicas
    for name in spread:
        assert pulls(rhosts, name, IMAGE), name


def test_a_stopped_instance_loses_its_nodes_which_still_pull_and_nothing_else_changes(synced, spread, rfab, rhosts):
    second = failover_changes_only_hosts_lines(spread, rfab, rhosts, IMAGE)
    # The no-op proves trust by resolving through each node's dockerd, over TLS with the login: no pull.
    assert "resolved probe" in second and "pulled probe" not in second, second
    back = rfab("configure-targets", "--rebalance")
    assert back.code == 0 and placement(rhosts, list(spread)) == spread, back.output


def test_prune_collects_the_shared_store_once_while_every_instance_serves(synced, spread, rfab, rhosts):
    containers = {name: rhosts.run(name, "docker inspect -f '{{.Id}}' registry") for name in INSTANCES}
    since = on_deploy1(rhosts, "date +%s")

    pruned = rfab("prune-registry", "--keep", "0", "--images", str(synced))

    assert pruned.code == 0, pruned.output
    assert "deploy1 | prune-registry | CHANGED | 1 repositories: 1 tags deleted (1 manifests)" in pruned.output
    assert {name: rhosts.run(name, "docker inspect -f '{{.Id}}' registry") for name in INSTANCES} == containers
    collected = on_deploy1(rhosts, f"docker events --since {since} --until $(($(date +%s) + 1)) --filter container=registry-gc "
                                   "--filter event=start --format '{{.Time}}'").split()  # fmt: skip
    assert len(collected) == 1
    for name in ("replica1", "replica2"):
        assert rhosts.run(name, "docker ps -aq --filter name=registry-gc --filter name=registry-writer") == ""
    for name in spread:
        assert pulls(rhosts, name, IMAGE), name


def test_a_replica_certificate_near_its_end_is_renewed_from_deploy1_and_nodes_are_untouched(synced, spread, rfab, rhosts):
    # replica1's certificate re-signed to end in ten days, as if a year had passed (in place, on deploy1 and replica1).
    cert = replica_cert("replica1")
    on_deploy1(
        rhosts,
        f"cd /etc/kolla-registry/ca && openssl x509 -in {cert} -signkey replicas/replica1.key -x509toreq -out /tmp/r.csr "
        f"2>/dev/null && openssl x509 -req -in /tmp/r.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 10 "
        f"-copy_extensions copy -out {cert} 2>/dev/null",
    )
    before = {name: node_state(rhosts, name) for name in spread}

    renewed = rfab("deploy-host")

    assert renewed.code == 0, renewed.output
    assert re.search(r"deploy1 \| secure-registry \| CHANGED \| replica1: renew the server certificate \((9|10) days left\)",
                     renewed.output), renewed.output  # fmt: skip
    assert "replica1 | secure-registry | CHANGED | write /etc/kolla-registry/tls/server.crt" in renewed.output
    days = rhosts.run("replica1", "openssl x509 -enddate -noout -in /etc/kolla-registry/tls/server.crt")
    assert "replica1 | verify-registry | OK" in renewed.output and days
    again = rfab("configure-targets")
    assert again.code == 0 and changed_steps(again.output) == [], again.output
    assert {name: node_state(rhosts, name) for name in spread} == before
    assert changed_steps(rfab("deploy-host").output) == []
