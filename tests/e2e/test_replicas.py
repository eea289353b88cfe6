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
    PODMAN_DROPIN,
    UNMARK_HOSTS,
    Fab,
    Hosts,
    changed_steps,
    engine_of,
    ensure_deployed,
    inventory_variant,
    podman_registries,
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
        # Every instance is one of podman's mirrors, the node's own first: a move may only reorder them.
        text = hosts.run(name, "cat /etc/containers/registries.conf.d/50-kolla-registry.conf")
        return tuple(sorted(text.split("\n\n")))
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


def failover_changes_only_hosts_lines(spread: dict[str, str], rfab: Fab, rhosts: Hosts, image: str) -> str:
    """Stop replica2's registry: its nodes move and still pull ``image``, every other node is untouched, and a
    second run changes nothing (its output returned); replica2 is started again after."""
    victims = [name for name, instance in spread.items() if instance == "replica2"]
    assert victims
    before = {name: node_state(rhosts, name) for name in spread}
    rhosts.run("replica2", "docker stop registry >/dev/null")
    try:
        result = rfab("configure-targets")
        assert result.code == 0, result.output
        after = placement(rhosts, list(spread))
        for name, instance in spread.items():
            if name in victims:
                assert after[name] != "replica2"
                assert "moved from replica2 (does not answer /v2/)" in result.output
                assert pulls(rhosts, name, image), name
            else:
                assert after[name] == instance
            # An /etc/hosts edit only: no reload, no restart, no other file.
            assert node_state(rhosts, name) == before[name]
        second = rfab("configure-targets")
        assert second.code == 0 and changed_steps(second.output) == [], second.output
        return second.output
    finally:
        rhosts.run("replica2", "docker start registry >/dev/null")


def test_a_stopped_instance_loses_its_nodes_which_still_pull_and_nothing_else_changes(spread, rfab, rhosts):
    failover_changes_only_hosts_lines(spread, rfab, rhosts, IMAGE)


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


# Zones (issue 23): one zone per instance, so that "its own zone's instance" names exactly one instance and the
# zone-first mapping can be asserted node by node. replica2's zone (c) is the one the tests stop.
INSTANCE_ZONES = {"deploy1": "a", "replica1": "b", "replica2": "c"}
ZONE_INSTANCE = {zone: instance for instance, zone in INSTANCE_ZONES.items()}
STOPPED_ZONE = "c"


def instance_address(hosts: Hosts, instance: str) -> str:
    return hosts.inventory.deploy_host.address if instance == "deploy1" else replica_ip(instance)


def node_zones(hosts: Hosts, names: list[str]) -> dict[str, str]:
    """The podman node in zone c, the Docker nodes dealt over a, b, c: zone c holds both engines."""
    podman = [name for name in names if engine_of(hosts, name) == "podman"]
    assert podman, "the suite's lab has a trixie-podman node"
    docker = [name for name in names if name not in podman]
    zones = {name: STOPPED_ZONE for name in podman}
    zones.update({name: "abc"[index % 3] for index, name in enumerate(docker)})
    return zones


@pytest.fixture(scope="module")
def zones(deployed_replicas, store_lab, rhosts) -> dict[str, str]:
    return node_zones(rhosts, store_lab[1])


@pytest.fixture(scope="module")
def zfab(zones, store_lab, rfab, tmp_path_factory) -> Fab:
    """``fab`` with the replicas inventory plus a zone on deploy1, each replica and each target; the nodes put
    back as the zone-less inventory spreads them after (as on a fresh cloud, as the module's other tests expect)."""

    def zoned(data: dict) -> None:
        data["deploy_host"]["zone"] = INSTANCE_ZONES["deploy1"]
        for replica in data["registry"]["replicas"]:
            replica["zone"] = INSTANCE_ZONES[replica["name"]]
        for target in data["targets"]:
            target["zone"] = zones[target["name"]]

    yield Fab(inventory_variant(store_lab[0], tmp_path_factory.mktemp("zones"), edit=zoned))
    restored = rfab("configure-targets", "--rebalance")
    assert restored.code == 0, restored.output


@pytest.fixture(scope="module")
def zoned(zfab, zones, rfab, rhosts, tmp_path_factory) -> dict[str, str]:
    """A synced image to pull, and every node configured with zones: the instance each one maps the name to."""
    upstream.synced(rfab, tmp_path_factory.mktemp("zone-images"), [SYNCED])
    result = zfab("configure-targets")
    assert result.code == 0, result.output
    return placement(rhosts, list(zones))


def status_rows(fab: Fab) -> dict[str, dict]:
    shown = fab("status", "--json")
    assert shown.code == 0, shown.output
    return {row["host"]: row for row in json.loads(shown.output[shown.output.index("{") :])["hosts"]}


def wait_answering(hosts: Hosts, instance: str) -> None:
    """Until the instance answers /v2/ again (a restarted container takes a moment to listen)."""
    url = f"http://{instance_address(hosts, instance)}:4000/v2/"
    hosts.run("deploy1", f"for i in $(seq 30); do curl -fsS -o /dev/null {url} && exit 0; sleep 1; done; exit 1")


def mirrors(hosts: Hosts, name: str) -> list[str]:
    """The podman node's mirrors of the name, in the order it tries them (the drop-in lists the name first)."""
    listed = podman_registries(hosts, name)
    assert listed[0] == f"{HOSTNAME}:4000", listed
    return listed[1:]


def test_zoned_nodes_map_to_their_own_zone_s_instance_and_status_shows_the_zone(zoned, zones, zfab, rhosts):
    # One instance a zone, every one healthy: each node on its zone's, whatever the rendezvous spread says.
    assert zoned == {name: ZONE_INSTANCE[zone] for name, zone in zones.items()}
    for name in (name for name in zones if engine_of(rhosts, name) == "podman"):
        # Every instance as a mirror, its own (its zone's) first: a dead one is passed at pull time.
        listed = mirrors(rhosts, name)
        assert listed[0] == f"{instance_address(rhosts, zoned[name])}:4000", listed
        assert sorted(listed) == sorted(f"{instance_address(rhosts, i)}:4000" for i in INSTANCES), listed
    rows = status_rows(zfab)
    for name, zone in zones.items():
        assert (rows[name]["zone"], rows[name]["instance"]) == (zone, zoned[name]), rows[name]


def test_a_podman_node_keeps_pulling_with_its_zone_s_instance_stopped_and_no_configure_targets(zoned, zones, rhosts):
    podman = [name for name in zones if engine_of(rhosts, name) == "podman"]
    docker = [name for name, zone in zones.items() if zone == STOPPED_ZONE and name not in podman]
    assert podman and docker
    before = {name: rhosts.run(name, f"cat {PODMAN_DROPIN}") for name in podman}
    rhosts.run(ZONE_INSTANCE[STOPPED_ZONE], "docker stop registry >/dev/null")
    try:
        # Nothing reconfigured: the name still maps to the stopped instance on every node of the zone...
        assert placement(rhosts, [*podman, *docker]) == {name: ZONE_INSTANCE[STOPPED_ZONE] for name in [*podman, *docker]}
        # ...so a Docker node of the zone, which has no mirrors, cannot pull: the stop is real.
        assert not pulls(rhosts, docker[0]), docker[0]
        for name in podman:
            # The podman node passes its dead first mirror and pulls from the next, its drop-in untouched.
            assert pulls(rhosts, name), name
            assert rhosts.run(name, f"cat {PODMAN_DROPIN}") == before[name]
    finally:
        rhosts.run(ZONE_INSTANCE[STOPPED_ZONE], "docker start registry >/dev/null")
        wait_answering(rhosts, ZONE_INSTANCE[STOPPED_ZONE])


def test_a_zone_whose_instance_stops_falls_back_to_another_zone_and_returns_when_it_restarts(zoned, zones, zfab, rhosts):
    stopped = ZONE_INSTANCE[STOPPED_ZONE]
    victims = [name for name, zone in zones.items() if zone == STOPPED_ZONE]
    assert victims and all(zoned[name] == stopped for name in victims)
    rhosts.run(stopped, "docker stop registry >/dev/null")
    try:
        result = zfab("configure-targets")
        assert result.code == 0, result.output
        after = placement(rhosts, list(zones))
        rows = status_rows(zfab)
        for name in zones:
            if name not in victims:
                assert after[name] == zoned[name], name  # the other zones' nodes stay on their own
                assert rows[name]["instance"] == zoned[name], rows[name]
                continue
            assert after[name] in ("deploy1", "replica1"), (name, after[name])
            said = [line for line in result.output.splitlines() if line.startswith(f"{name} | ")]
            assert any(
                f"moved from {stopped} (does not answer /v2/); zone {STOPPED_ZONE} has no healthy instance" in line
                for line in said
            ), said
            fallback = f"{after[name]} (zone {INSTANCE_ZONES[after[name]]}, fallback)"
            assert (rows[name]["zone"], rows[name]["instance"]) == (STOPPED_ZONE, fallback), rows[name]
            assert pulls(rhosts, name), name
            if engine_of(rhosts, name) == "podman":
                # The instance it fell back to first now, its own zone's (stopped) next: back there when it answers.
                listed = mirrors(rhosts, name)
                assert listed[:2] == [f"{instance_address(rhosts, i)}:4000" for i in (after[name], stopped)], listed
        # The zone's instance back: its nodes go home on the next run, the others stay where they are.
        rhosts.run(stopped, "docker start registry >/dev/null")
        wait_answering(rhosts, stopped)
        back = zfab("configure-targets")
        assert back.code == 0, back.output
        assert placement(rhosts, list(zones)) == zoned
        for name in victims:
            assert f"moved from {after[name]} (back in zone {STOPPED_ZONE})" in back.output, name
            assert pulls(rhosts, name), name
        rows = status_rows(zfab)
        for name, zone in zones.items():
            assert (rows[name]["zone"], rows[name]["instance"]) == (zone, zoned[name]), rows[name]
    finally:
        rhosts.run(stopped, "docker start registry >/dev/null")
        wait_answering(rhosts, stopped)
