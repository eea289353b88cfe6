"""Several registries on one S3 store: the deployment host and two replicas, nodes spread over them by name.

Brings its own lab layout (tests.lab.store: store1 running SeaweedFS, replica1 and
replica2) and an inventory of its own, and takes both away after, putting deploy1's
registry back on its volume: the suite's lab is left as it was.
"""

from __future__ import annotations

import json
from collections import Counter

import pytest

from benchmarks import imageset, labnet
from tests.lab import paths
from tests.lab.store import HOSTNAME, S3_PORT, STORE_IP, down_replicas, replica_ip, up_replicas

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

pytestmark = pytest.mark.e2e

SYNCED = "lab/through-deploy1:1"
IMAGE = f"{HOSTNAME}:4000/{SYNCED}"
INSTANCES = ("deploy1", "replica1", "replica2")


@pytest.fixture(scope="module")
def store_lab(lab, fab, hosts, tmp_path_factory):
    """The inventory of the lab with two replicas on the S3 store; the suite's lab restored after."""
    inventory = up_replicas(2, tmp_path_factory.mktemp("replicas") / "hosts.yaml")
    names = [host.name for host in hosts.inventory.targets]
    reset_targets(hosts, names)
    try:
        yield inventory, names
    finally:
        down_replicas()
        for name in names:
            hosts.run(name, UNMARK_HOSTS, check=False)
        hosts.run("deploy1", "rm -f /etc/kolla-registry/registry.env", check=False)
        ensure_deployed(fab)  # the registry back on its volume, as the suite's other tests expect it


@pytest.fixture(scope="module")
def rfab(store_lab) -> Fab:
    return Fab(store_lab[0])


@pytest.fixture(scope="module")
def rhosts(store_lab) -> Hosts:
    return Hosts(store_lab[0])


@pytest.fixture(scope="module")
def deployed_replicas(rfab):
    result = rfab("deploy-host")
    assert result.code == 0, result.output
    return result


@pytest.fixture(scope="module")
def spread(deployed_replicas, rfab, rhosts, store_lab):
    """Every node configured once: the instance each one's /etc/hosts maps the name to."""
    result = rfab("configure-targets")
    assert result.code == 0, result.output
    return placement(rhosts, store_lab[1])


def placement(hosts: Hosts, names: list[str]) -> dict[str, str]:
    by_address = {hosts.inventory.deploy_host.address: "deploy1"}
    by_address.update({replica_ip(name): name for name in ("replica1", "replica2")})
    found = {}
    for name in names:
        line = hosts.run(name, "grep '# kolla-registry$' /etc/hosts")
        assert line.split()[1] == HOSTNAME, line
        found[name] = by_address[line.split()[0]]
    return found


def pulls(hosts: Hosts, name: str, ref: str = IMAGE) -> bool:
    engine = engine_of(hosts, name)
    return hosts.run(name, f"{engine} rmi -f {ref} >/dev/null 2>&1; {engine} pull {ref} >/dev/null 2>&1 && echo ok", check=False) == "ok"


def node_state(hosts: Hosts, name: str) -> tuple:
    if engine_of(hosts, name) == "podman":
        return (hosts.run(name, "cat /etc/containers/registries.conf.d/50-kolla-registry.conf"),)
    return hosts.docker_pid(name), hosts.containers(name), hosts.run(name, "cat /etc/docker/daemon.json")


PLAIN_HTTP = f"the S3 store http://{STORE_IP}:{S3_PORT} is plain HTTP (registry.storage.s3.insecure: true)"


def test_the_lab_s_plain_http_store_is_refused_without_insecure_and_nothing_changes(store_lab, hosts, tmp_path):
    """The lab's SeaweedFS speaks http: an inventory that does not say insecure: true is refused when read."""

    def without_insecure(data: dict) -> None:
        del data["registry"]["storage"]["s3"]["insecure"]

    inventory = inventory_variant(store_lab[0], tmp_path, edit=without_insecure)
    before = hosts.run("deploy1", "docker ps -aq --no-trunc")

    result = Fab(inventory)("deploy-host")

    assert result.code == 2, result.output
    assert (
        f"registry.storage.s3.endpoint: 'http://{STORE_IP}:{S3_PORT}' is plain HTTP: anyone between the registries "
        "and the store can read and swap the images; use https://, or set registry.storage.s3.insecure: true"
    ) in result.output
    assert hosts.run("deploy1", "docker ps -aq --no-trunc") == before


def test_deploy_host_brings_up_every_instance_on_the_store(deployed_replicas):
    for name in INSTANCES:
        assert f"{name} | verify-registry | OK" in deployed_replicas.output


def test_every_instance_s_row_says_its_store_is_plain_http(deployed_replicas):
    for name in INSTANCES:
        row = next(line for line in deployed_replicas.output.splitlines() if line.startswith(f"{name} | create-registry |"))
        assert PLAIN_HTTP in row, row


def test_nodes_are_spread_evenly_and_trust_the_one_name(spread, rhosts):
    counts = Counter(spread.values())
    assert max(counts.values()) - min(counts.get(name, 0) for name in INSTANCES) <= 1
    for name in spread:
        if engine_of(rhosts, name) == "docker":
            assert f"{HOSTNAME}:4000" in json.loads(rhosts.run(name, "cat /etc/docker/daemon.json"))["insecure-registries"]


def push_refused(hosts: Hosts, name: str, ref: str) -> str:
    """``docker push`` of a tiny image as ``ref`` from host ``name``: its last words (it must fail)."""
    out = hosts.run(
        name,
        f"d=$(mktemp -d); echo lab > $d/f; tar -C $d -c f | docker import - {ref} >/dev/null; "
        f"docker push {ref} 2>&1; echo exit=$?; docker rmi {ref} >/dev/null 2>&1",
        check=False,
    )
    assert "exit=0" not in out, out
    return out


def test_no_instance_takes_a_push_not_even_from_its_own_host_and_what_sync_copied_pulls_everywhere(
    spread, rfab, rhosts, tmp_path
):
    for instance in ("replica1", "replica2"):
        push_refused(rhosts, instance, f"{replica_ip(instance)}:4000/lab/pushed:1")
    node = next(name for name in spread if engine_of(rhosts, name) == "docker")
    push_refused(rhosts, node, f"{HOSTNAME}:4000/lab/pushed:1")
    catalog = json.loads(rhosts.run("deploy1", f"curl -sS http://{replica_ip('replica1')}:4000/v2/_catalog"))
    assert "lab/pushed" not in catalog["repositories"]

    upstream.synced(rfab, tmp_path, [SYNCED])

    others = [name for name, instance in spread.items() if instance != "deploy1"]
    assert others
    for name in others:
        assert pulls(rhosts, name), name


def test_images_synced_through_the_deployment_host_pull_on_nodes_of_the_replicas(spread, rfab, rhosts, store_lab, tmp_path):
    image_set = imageset.build(imageset.QUICK, paths().root / "bench-images")
    labnet.start_upstream()
    imageset.push(image_set, labnet.UPSTREAM)
    section = {"registry": labnet.UPSTREAM, "insecure": True, "namespace": imageset.NAMESPACE,
               "tag": imageset.TAG, "services": list(image_set.images)}  # fmt: skip
    inventory = inventory_variant(store_lab[0], tmp_path, images=section)
    synced = Fab(inventory)("sync-images")
    assert synced.code == 0, synced.output
    on_replicas = [name for name, instance in spread.items() if instance != "deploy1"]
    assert on_replicas
    for name in on_replicas:
        for ref in image_set.refs(f"{HOSTNAME}:4000"):
            assert pulls(rhosts, name, ref), (name, ref)


def test_a_stopped_instance_loses_its_nodes_which_still_pull_and_nothing_else_changes(spread, rfab, rhosts):
    victims = [name for name, instance in spread.items() if instance == "replica2"]
    assert victims
    before = {name: node_state(rhosts, name) for name in spread}
    rhosts.run("replica2", "docker stop registry >/dev/null")
    try:
        result = rfab("configure-targets")
        assert result.code == 0, result.output
        after = placement(rhosts, list(spread))
        for name in spread:
            if name in victims:
                assert after[name] != "replica2"
                assert "moved from replica2 (does not answer /v2/)" in result.output
                assert pulls(rhosts, name), name
            else:
                assert after[name] == spread[name]
            # An /etc/hosts edit only: no reload, no restart, no other file.
            assert node_state(rhosts, name) == before[name]
        second = rfab("configure-targets")
        assert second.code == 0 and changed_steps(second.output) == [], second.output
    finally:
        rhosts.run("replica2", "docker start registry >/dev/null")


def test_rebalance_puts_the_nodes_back_as_on_a_fresh_cloud(spread, rfab, rhosts):
    result = rfab("configure-targets", "--rebalance")
    assert result.code == 0, result.output
    assert placement(rhosts, list(spread)) == spread


def test_recreated_registry_containers_still_hold_every_image(spread, rfab, rhosts):
    for name in INSTANCES:
        rhosts.run(name, "docker rm -f registry >/dev/null")
    result = rfab("deploy-host")
    assert result.code == 0, result.output
    for name in INSTANCES:
        address = rhosts.inventory.deploy_host.address if name == "deploy1" else replica_ip(name)
        catalog = json.loads(rhosts.run("deploy1", f"curl -sS http://{address}:4000/v2/_catalog"))
        assert "lab/through-deploy1" in catalog["repositories"], name
    assert all(pulls(rhosts, name) for name in spread)
