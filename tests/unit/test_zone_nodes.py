"""Zones end to end without SSH: read from hosts.yaml, placed zone first, podman's ordered mirrors, status."""

from __future__ import annotations

import tomllib
from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from fabfile import inventory as inv
from fabfile.actions.status import Status
from fabfile.actions.targets import ConfigureTargets, SurveyNodes
from fabfile.engines.podman import registries as pr
from fabfile.engines.podman.paths import ca_path
from fabfile.model.context import Placement, StepContext
from fabfile.model.inventory import Host, InventoryError
from fabfile.model.outcome import CHANGED
from fabfile.registry.access import Instance, instances
from fabfile.registry.replicas.hosts_file import ETC_HOSTS
from fabfile.registry.replicas.placement import Surveyed, placements
from fabfile.registry.status import HostStatus, status_table

from .factories import applied, host_facts, make_inventory, podman_host, run_on_host

NAME = "kolla-registry.internal"
REGISTRY = f"{NAME}:4000"
# deploy1 and replica1 in zone a, replica2 in zone b.
INSTANCES = (
    Instance("deploy1", "192.0.2.10", "a"),
    Instance("replica1", "192.0.2.21", "a"),
    Instance("replica2", "192.0.2.22", "b"),
)
UP = {"deploy1": True, "replica1": True, "replica2": True}


def inventory_text(secret: Path, **changes) -> str:
    data = {
        "defaults": {"zone": "a"},
        "deploy_host": {"name": "deploy1", "address": "192.0.2.10"},
        "targets": [
            {"name": "node1", "address": "192.0.2.11"},
            {"name": "node2", "address": "192.0.2.12", "zone": "b"},
        ],
        "registry": {
            "hostname": NAME,
            "replicas": [
                {"name": "replica1", "address": "192.0.2.21"},
                {"name": "replica2", "address": "192.0.2.22", "zone": "b"},
            ],
            "storage": {"s3": {"endpoint": "https://rgw.example:8080", "bucket": "kolla-registry",
                               "region": "us-east-1", "access_key": "AKIAKOLLA", "secret_key_file": str(secret)}},
        },
    }  # fmt: skip
    data.update(changes)
    return yaml.safe_dump(data)


@pytest.fixture
def secret(tmp_path) -> Path:
    path = tmp_path / "s3-secret"
    path.write_text("wJalrXUtnFEMI/K7MDENG\n")
    return path


def test_zones_are_read_for_targets_replicas_and_the_deployment_host_with_defaults(secret):
    inventory = inv.parse(inventory_text(secret), Path("/srv/hosts.yaml"))
    assert [(host.name, host.zone) for host in inventory.targets] == [("node1", "a"), ("node2", "b")]
    assert inventory.deploy_host.zone == "a"
    assert instances(inventory, "192.0.2.10") == INSTANCES


@pytest.mark.parametrize("zone", ["rack 1", "a;reboot", "$(id)", "", "-a"])
def test_a_zone_that_is_not_a_label_is_refused_naming_the_key(secret, zone):
    text = inventory_text(secret, targets=[{"name": "node1", "address": "192.0.2.11", "zone": zone}])
    with pytest.raises(InventoryError, match=r"^/srv/hosts.yaml: targets\[0\].zone: "):
        inv.parse(text, Path("/srv/hosts.yaml"))


def surveyed(mapped: str, answers: dict[str, bool]) -> Surveyed:
    return Surveyed(f"127.0.0.1 localhost\n{mapped} {NAME}  # kolla-registry\n", answers)


ZONES = {"node1": "a", "node2": "b"}


def test_a_node_of_a_zone_whose_instances_are_down_falls_back_and_says_so():
    down = {**UP, "replica2": False}
    placed = placements(["node1", "node2"], INSTANCES, {"node1": surveyed("192.0.2.10", down),
                        "node2": surveyed("192.0.2.22", down)}, NAME, zones=ZONES)  # fmt: skip
    moved = placed["node2"]
    assert moved.name in ("deploy1", "replica1") and moved.fallback == "b"
    assert moved.note == "moved from replica2 (does not answer /v2/); zone b has no healthy instance"
    # Its own first, then its zone's (down now, back later), then the rest.
    assert moved.mirrors[0] == moved.address and moved.mirrors[1] == "192.0.2.22"
    assert set(moved.mirrors) == {instance.address for instance in INSTANCES}
    assert placed["node1"].fallback == "" and placed["node1"].note == ""


def test_a_node_goes_back_to_its_zone_when_an_instance_there_answers_again():
    fell_back = placements(["node2"], INSTANCES, {"node2": surveyed("192.0.2.22", {**UP, "replica2": False})},
                           NAME, zones=ZONES)["node2"]  # fmt: skip
    back = placements(["node2"], INSTANCES, {"node2": surveyed(fell_back.address, UP)}, NAME, zones=ZONES)["node2"]
    assert (back.name, back.fallback) == ("replica2", "")
    assert back.note == f"moved from {fell_back.name} (back in zone b)"
    assert back.mirrors[0] == "192.0.2.22"


def placed_ctx(placement: Placement, registry: dict | None = None) -> StepContext:
    return replace(StepContext(make_inventory({"hostname": NAME, **(registry or {})}), NAME), placement=placement)


FALLBACK = Placement("deploy1", "192.0.2.10", "", ("192.0.2.10", "192.0.2.22", "192.0.2.21"), "b")


def test_a_podman_node_lists_every_instance_as_ordered_mirrors_of_the_name():
    plan = pr.trust_podman(podman_host(), placed_ctx(FALLBACK))

    [change] = plan.files
    assert tomllib.loads(change.after)["registry"] == [
        {
            "location": REGISTRY,
            "insecure": True,
            "mirror": [{"location": f"{address}:4000", "insecure": True} for address in FALLBACK.mirrors],
        }
    ]
    again = pr.trust_podman(applied(podman_host(), plan), placed_ctx(FALLBACK))
    assert not again.changed and again.error is None
    assert pr.trusted(applied(podman_host(), plan), REGISTRY)


def test_a_new_order_rewrites_the_dropin_and_keeps_other_registries():
    first = applied(podman_host(), pr.trust_podman(podman_host(), StepContext(make_inventory(), "192.0.2.10")))
    plan = pr.trust_podman(first, placed_ctx(FALLBACK))
    home = replace(FALLBACK, name="replica2", address="192.0.2.22", mirrors=("192.0.2.22", "192.0.2.10", "192.0.2.21"))
    moved = pr.trust_podman(applied(first, plan), placed_ctx(home))
    listed = tomllib.loads(moved.files[0].after)["registry"]
    assert [entry["location"] for entry in listed] == ["192.0.2.10:4000", REGISTRY]
    assert [mirror["location"] for mirror in listed[1]["mirror"]] == [f"{a}:4000" for a in home.mirrors]


def test_an_operators_mirrors_for_the_registry_are_still_a_conflict():
    other = f"{pr.REGISTRIES_DIR}/99-site.conf"
    text = f'[[registry]]\nlocation = "{REGISTRY}"\ninsecure = true\n[[registry.mirror]]\nlocation = "10.9.9.9:5000"\n'
    facts = applied(podman_host(), pr.trust_podman(podman_host(), placed_ctx(FALLBACK)))
    facts.files[other] = text
    assert "pulls through mirrors first" in pr.trust_podman(facts, placed_ctx(FALLBACK)).error


def test_a_tls_registry_puts_its_ca_where_podman_looks_for_each_mirror():
    ctx = replace(placed_ctx(FALLBACK, {"tls": "files"}), ca="-----BEGIN CERTIFICATE-----\nx\n-----END CERTIFICATE-----\n")
    plan = pr.trust_podman(podman_host(), ctx)
    cas = {change.path for change in plan.files if change.path.endswith("ca.crt")}
    assert cas == {ca_path(REGISTRY), *(ca_path(f"{address}:4000") for address in FALLBACK.mirrors)}
    dropin = next(change for change in plan.files if change.path == pr.DROPIN)
    assert all(mirror["insecure"] is False for mirror in tomllib.loads(dropin.after)["registry"][0]["mirror"])
    # The facts read each mirror's CA too, so that a second run sees them in place.
    assert all(ca_path(f"{address}:4000") in pr.podman_files(ctx).shell for address in FALLBACK.mirrors)


def test_configure_targets_row_says_a_node_is_on_a_fallback():
    action = ConfigureTargets({"node1": FALLBACK})
    run = run_on_host(action, podman_host(), placed_ctx(None))

    [row] = run.outcomes
    assert row.status == CHANGED
    assert f"{NAME} -> deploy1 (192.0.2.10)" in row.message
    assert "podman mirrors: 192.0.2.10:4000, 192.0.2.22:4000, 192.0.2.21:4000" in row.message
    assert row.message.endswith("pulled probe with podman (fallback: zone b has no healthy instance)"), row.message


def test_the_survey_is_the_same_with_zones():
    action = SurveyNodes(INSTANCES)
    assert [section.name for section in action.sections(placed_ctx(FALLBACK))] == ["files", "instances"]


def test_status_shows_each_hosts_zone_and_a_fallback(secret):
    inventory = inv.parse(inventory_text(secret), Path("/srv/hosts.yaml"))
    status = Status(inventory, "/etc/kolla/globals.yml", lambda: "192.0.2.10")
    on = {address: host_facts(files={ETC_HOSTS: f"{address} {NAME}  # kolla-registry\n"}) for address in ("192.0.2.10", "192.0.2.22")}
    node1, node2 = inventory.targets
    assert status.instance_of(on["192.0.2.10"], node1) == "deploy1"
    assert status.instance_of(on["192.0.2.10"], node2) == "deploy1 (zone a, fallback)"
    assert status.instance_of(on["192.0.2.22"], node2) == "replica2"
    assert status.instance_of(on["192.0.2.22"], Host("node9", "192.0.2.19")) == "replica2"  # no zone: no fallback
    rows = [HostStatus("node2", "target", "192.0.2.12", True, instance="deploy1 (zone a, fallback)", zone="b")]
    table = status_table(rows, REGISTRY)
    header = table.splitlines()[1]
    assert "zone" in header and "instance" in header and "deploy1 (zone a, fallback)" in table
