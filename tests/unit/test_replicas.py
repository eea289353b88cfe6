"""Several registries, one store: the inventory, the registry's env file, /etc/hosts, placements."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from fabfile import inventory as inv
from fabfile.actions.prune import PruneRegistry
from fabfile.actions.status import Status
from fabfile.actions.targets import SurveyNodes, configure_engines
from fabfile.engine.access import RegistryAccess
from fabfile.facts import base as facts
from fabfile.model.context import Placement, StepContext
from fabfile.model.facts import HostFacts
from fabfile.model.inventory import Host, Inventory, InventoryError, RegistrySettings, S3Store
from fabfile.model.marks import MARK
from fabfile.registry import container as registry
from fabfile.registry.access import Access, Instance
from fabfile.registry.facts import container_sections
from fabfile.registry.paths import ENV_FILE
from fabfile.registry.reach import health_section
from fabfile.registry.replicas import hosts_file
from fabfile.registry.replicas.hosts_file import ETC_HOSTS, HostsFileError, current_address, with_entry
from fabfile.registry.replicas.placement import Surveyed, place_node, placements
from fabfile.registry.status import REPLICA, HostStatus, host_role, status_table
from fabfile.registry.storage import http_secret, registry_env

from .factories import changed, container, docker_host, host_facts, make_inventory

NAME = "kolla-registry.internal"
DEBIAN_HOSTS = "127.0.0.1\tlocalhost\n192.0.2.11\tnode1\n\n# IPv6\n::1 localhost ip6-localhost\n"
KOLLA_BLOCK = (
    "127.0.0.1 localhost\n# BEGIN ANSIBLE GENERATED HOSTS\n192.0.2.11 node1\n192.0.2.12 node2\n"
    "# END ANSIBLE GENERATED HOSTS\n"
)


@pytest.fixture
def secret(tmp_path) -> Path:
    path = tmp_path / "s3-secret"
    path.write_text("wJalrXUtnFEMI/K7MDENG\n")
    return path


def inventory_text(secret: Path, **registry) -> str:
    data = {
        "deploy_host": {"name": "deploy1", "address": "192.0.2.10"},
        "targets": [{"name": "node1", "address": "192.0.2.11"}],
        "registry": {
            "hostname": NAME,
            "replicas": [{"name": "replica1", "address": "192.0.2.21", "user": "ops"}],
            "storage": {
                "s3": {
                    "endpoint": "https://rgw.example:8080",
                    "bucket": "kolla-registry",
                    "region": "us-east-1",
                    "access_key": "AKIAKOLLA",
                    "secret_key_file": str(secret),
                }
            },
            **registry,
        },
    }
    return yaml.safe_dump(data)


def parse(text: str) -> Inventory:
    return inv.parse(text, Path("/srv/hosts.yaml"))


# --- the inventory ------------------------------------------------------------------------------


def test_replicas_s3_and_hostname_are_read(secret):
    inventory = parse(inventory_text(secret))
    settings = inventory.registry
    assert settings.hostname == NAME and settings.storage == "s3"
    assert settings.replicas == (Host("replica1", "192.0.2.21", user="ops"),)
    assert settings.s3 == S3Store("https://rgw.example:8080", "kolla-registry", "us-east-1", "AKIAKOLLA", str(secret))
    assert [host.name for host in inventory.registry_hosts] == ["deploy1", "replica1"]
    assert inventory.find("replica1").user == "ops"
    assert [host.name for host in inventory.machines] == ["deploy1", "node1", "replica1"]


def test_replicas_take_tls_self_signed_and_a_login(secret):
    # One CA on the deployment host issues every instance's certificate; one login file for all.
    inventory = parse(inventory_text(secret, tls="self-signed", auth="htpasswd"))

    assert (inventory.registry.tls, inventory.registry.auth) == ("self-signed", "htpasswd")
    assert inventory.registry.replicas == (Host("replica1", "192.0.2.21", user="ops"),)


def test_replicas_without_a_shared_store_are_refused_naming_the_key(secret):
    text = inventory_text(secret, storage="filesystem")
    with pytest.raises(InventoryError, match=r"^/srv/hosts.yaml: registry.replicas: replicas need a shared store"):
        parse(text)


@pytest.mark.parametrize(
    "change, key",
    [
        ({"hostname": None}, "registry.hostname: missing"),
        ({"hostname": "registry"}, "registry.hostname: 'registry' is not a DNS name"),
        ({"hostname": "10.0.0.1"}, "registry.hostname"),
        ({"replicas": [{"name": "replica1", "address": "replica.example"}]}, r"registry.replicas\[0\].address"),
        ({"replicas": [{"name": "deploy1", "address": "192.0.2.21"}]}, r"registry.replicas\[0\].name"),
        ({"replicas": [{"name": "node1", "address": "192.0.2.99"}]}, r"registry.replicas\[0\].address"),
        ({"address": "registry.example"}, "registry.address: .* give the deployment host's IPv4 address"),
        ({"storage": {"s3": {"bucket": "b"}}}, "registry.storage.s3.access_key: missing"),
        ({"storage": "nfs"}, "registry.storage: 'nfs' is not filesystem"),
    ],
)
def test_bad_store_settings_are_refused_naming_the_key(secret, change, key):
    data = yaml.safe_load(inventory_text(secret))
    data["registry"].update(change)
    data["registry"] = {k: v for k, v in data["registry"].items() if v is not None}
    with pytest.raises(InventoryError, match=key):
        parse(yaml.safe_dump(data))


def test_a_plain_http_store_is_refused_naming_the_endpoint_unless_insecure_is_set(secret):
    data = yaml.safe_load(inventory_text(secret))
    data["registry"]["storage"]["s3"]["endpoint"] = "http://rgw.example:8080"
    with pytest.raises(InventoryError, match=r"registry.storage.s3.endpoint: 'http://rgw.example:8080' is plain HTTP"):
        parse(yaml.safe_dump(data))

    data["registry"]["storage"]["s3"]["insecure"] = True
    store = parse(yaml.safe_dump(data)).registry.s3
    assert store.endpoint == "http://rgw.example:8080" and store.insecure


def test_insecure_is_a_boolean_and_an_https_store_needs_none(secret):
    data = yaml.safe_load(inventory_text(secret))
    data["registry"]["storage"]["s3"]["insecure"] = "yes"
    with pytest.raises(InventoryError, match="registry.storage.s3.insecure: expected true or false"):
        parse(yaml.safe_dump(data))
    assert parse(inventory_text(secret)).registry.s3.insecure is False


def test_a_secret_key_file_must_be_readable_and_one_word(secret):
    secret.write_text("two words\n")
    with pytest.raises(InventoryError, match="secret_key_file: .*on one line"):
        parse(inventory_text(secret))
    secret.unlink()
    with pytest.raises(InventoryError, match="secret_key_file: .*cannot read"):
        parse(inventory_text(secret))


def test_one_instance_on_a_name_needs_no_replicas_nor_s3(secret):
    data = yaml.safe_load(inventory_text(secret))
    data["registry"] = {"hostname": NAME}
    assert parse(yaml.safe_dump(data)).registry.hostname == NAME


# --- the registry container on S3 ---------------------------------------------------------------


def s3_ctx(secret: Path, address: str = "192.0.2.10") -> StepContext:
    store = S3Store("http://store:8333", "registry", "us-east-1", "kolla", str(secret))
    return StepContext(make_inventory({"hostname": NAME, "s3": store}), address)


def parse_env(text: str) -> dict[str, str]:
    """KEY=VALUE lines as ``docker run --env-file`` reads them (comments and blank lines skipped)."""
    pairs = (line.split("=", 1) for line in text.splitlines() if "=" in line and not line.startswith("#"))
    return {key: value for key, value in pairs}


def test_every_instance_gets_the_same_env_file_and_http_secret(secret):
    ctx = s3_ctx(secret)
    env = parse_env(registry_env(ctx.inventory.registry))
    assert env["REGISTRY_STORAGE"] == "s3" and env["REGISTRY_STORAGE_S3_SECRETKEY"] == "wJalrXUtnFEMI/K7MDENG"
    assert env["REGISTRY_STORAGE_S3_FORCEPATHSTYLE"] == "true" and env["REGISTRY_STORAGE_REDIRECT_DISABLE"] == "true"
    assert env["REGISTRY_STORAGE_MAINTENANCE_UPLOADPURGING"] == '{"enabled":false}'
    assert env["REGISTRY_HTTP_SECRET"] == http_secret(ctx.inventory.registry) and len(env["REGISTRY_HTTP_SECRET"]) == 64
    secret.write_text("another\n")
    assert http_secret(ctx.inventory.registry) != env["REGISTRY_HTTP_SECRET"]


def test_the_env_file_is_a_0600_secret_and_the_keys_never_reach_the_command_line(secret):
    ctx = s3_ctx(secret)
    plan = registry.create_registry(docker_host(), ctx)
    env_file = next(change for change in plan.files if change.path == ENV_FILE)
    assert env_file.mode == "600" and env_file.secret and "content not shown" in env_file.diff()
    run = plan.commands[-1]
    assert f"--env-file {ENV_FILE}" in run and "wJalr" not in run and "-v registry:" not in run


def test_the_deploy_host_row_says_every_time_that_a_plain_http_store_is_in_use(secret):
    ctx = s3_ctx(secret)
    spec = registry.spec_of(docker_host(), ctx)
    host = changed(docker_host(container=container(spec)), files={ENV_FILE: registry_env(ctx.inventory.registry)})
    first, again = registry.create_registry(docker_host(), ctx), registry.create_registry(host, ctx)

    warning = "the S3 store http://store:8333 is plain HTTP (registry.storage.s3.insecure: true)"
    assert warning in first.summary() and warning in again.summary() and not again.changed
    https = replace(ctx.inventory.registry, s3=replace(ctx.inventory.registry.s3, endpoint="https://store:8333"))
    assert "plain HTTP" not in registry.create_registry(docker_host(), replace(ctx, inventory=replace(ctx.inventory, registry=https))).summary()


def test_a_new_store_secret_recreates_the_container_and_the_same_one_does_not(secret):
    ctx = s3_ctx(secret)
    spec = registry.spec_of(docker_host(), ctx)
    host = changed(docker_host(container=container(spec)), files={ENV_FILE: registry_env(ctx.inventory.registry)})
    assert not registry.create_registry(host, ctx).changed
    secret.write_text("rotated\n")
    plan = registry.create_registry(host, ctx)
    assert [change.path for change in plan.files] == [ENV_FILE]
    assert plan.commands[0].startswith("docker rm -f registry") and "cp -a" not in " ".join(plan.commands)


def test_filesystem_storage_keeps_the_spec_it_had():
    ctx = StepContext(make_inventory(), "192.0.2.10")
    assert registry.spec_of(docker_host(), ctx) == registry.spec_of(docker_host(), replace(ctx, registry_address="x"))
    assert "-v registry:/var/lib/registry" in registry.registry_run_command(ctx, True, "spec")


# --- /etc/hosts ---------------------------------------------------------------------------------


def test_the_line_is_added_at_the_end_and_every_other_line_kept_byte_for_byte():
    after = with_entry(DEBIAN_HOSTS, "192.0.2.21", NAME)
    assert after == DEBIAN_HOSTS + f"192.0.2.21 {NAME}  # kolla-registry\n"
    assert current_address(after, NAME) == "192.0.2.21"


def test_the_line_is_edited_in_place_and_a_second_edit_changes_nothing():
    first = with_entry(DEBIAN_HOSTS, "192.0.2.21", NAME) + "10.0.0.1 other\n"
    moved = with_entry(first, "192.0.2.10", NAME)
    assert moved == first.replace("192.0.2.21", "192.0.2.10")
    assert with_entry(moved, "192.0.2.10", NAME) == moved
    assert hosts_file.hosts_change(moved, "192.0.2.10", NAME) is None


def test_a_file_without_a_final_newline_gets_one_before_the_line():
    assert with_entry("127.0.0.1 localhost", "192.0.2.10", NAME).splitlines()[0] == "127.0.0.1 localhost"


def test_the_line_stays_outside_kolla_ansibles_block():
    after = with_entry(KOLLA_BLOCK, "192.0.2.10", NAME)
    assert after == KOLLA_BLOCK + f"192.0.2.10 {NAME}  # kolla-registry\n"
    inside = KOLLA_BLOCK.replace("192.0.2.12 node2\n", f"192.0.2.12 node2\n192.0.2.21 {NAME}  # kolla-registry\n")
    assert with_entry(inside, "192.0.2.10", NAME) == after


def test_another_line_for_the_name_is_named_and_left_alone():
    with pytest.raises(HostsFileError, match=f"line 2 maps {NAME} already"):
        with_entry(f"127.0.0.1 localhost\n10.9.9.9 {NAME}\n", "192.0.2.10", NAME)


def test_duplicate_owned_lines_become_one():
    text = f"127.0.0.1 localhost\n1.1.1.1 {NAME}  # kolla-registry\n2.2.2.2 {NAME}  # kolla-registry\n"
    assert with_entry(text, "192.0.2.10", NAME) == f"127.0.0.1 localhost\n192.0.2.10 {NAME}  # kolla-registry\n"


# --- placements and the node's plan -------------------------------------------------------------

INSTANCES = (Instance("deploy1", "192.0.2.10"), Instance("replica1", "192.0.2.21"))


def surveyed(mapped: str | None, answers: dict[str, bool]) -> Surveyed:
    """What the survey of a node tells, as ``SurveyNodes`` reads it from the node's facts."""
    text = DEBIAN_HOSTS + (f"{mapped} {NAME}  # kolla-registry\n" if mapped else "")
    node = host_facts(files={ETC_HOSTS: text}, instance_answers=answers)
    told = SurveyNodes(INSTANCES).data(node, StepContext(make_inventory({"hostname": NAME}), "192.0.2.10"))
    return Surveyed(told["etc_hosts"], told["instances"])


def test_nodes_on_a_down_instance_move_and_say_why():
    up = {"deploy1": True, "replica1": False}
    found = {"node1": surveyed("192.0.2.21", up), "node2": surveyed("192.0.2.10", up)}
    placed = placements(["node1", "node2"], INSTANCES, found, NAME)
    both = ("192.0.2.10", "192.0.2.21")  # every instance, its own first: podman's mirrors
    assert placed["node1"] == Placement("deploy1", "192.0.2.10", "moved from replica1 (does not answer /v2/)", both)
    assert placed["node2"] == Placement("deploy1", "192.0.2.10", "", both)


def test_an_unsurveyed_node_gets_no_placement():
    placed = placements(["node1", "node2"], INSTANCES, {"node1": surveyed(None, {})}, NAME)
    assert set(placed) == {"node1"}


def test_the_health_probe_quotes_its_values_and_reads_codes():
    section = health_section((Instance("deploy1", "192.0.2.10"),), "https", 4000)
    assert "https://192.0.2.10:4000/v2/ 2>" in section.shell and "-m 3" in section.shell
    output = f"\n{MARK} instances\ndeploy1 401\nreplica1 000\n"
    parsed = facts.parse(output, [section])
    assert parsed.reach.instances == {"deploy1": True, "replica1": False}


def test_the_survey_reads_each_node_s_etc_hosts_and_its_view_of_every_instance():
    ctx = StepContext(make_inventory({"hostname": NAME}), "192.0.2.10")
    action = SurveyNodes(INSTANCES)

    names = [section.name for section in action.sections(ctx)]
    told = action.data(host_facts(files={ETC_HOSTS: DEBIAN_HOSTS}, instance_answers={"deploy1": True}), ctx)

    assert names == ["files", "instances"]
    assert told == {"etc_hosts": DEBIAN_HOSTS, "instances": {"deploy1": True}}
    assert action.data(HostFacts(), ctx) == {"etc_hosts": None, "instances": {}}


def placed_ctx(address: str = "192.0.2.21") -> StepContext:
    ctx = StepContext(make_inventory({"hostname": NAME}), NAME)
    return replace(ctx, placement=Placement("replica1", address, "moved from deploy1 (does not answer /v2/)"))


def test_a_move_is_an_etc_hosts_edit_alone_with_no_docker_reload():
    ctx = placed_ctx()
    host = docker_host(files={"/etc/docker/daemon.json": f'{{"insecure-registries": ["{NAME}:4000"]}}', ETC_HOSTS: DEBIAN_HOSTS})
    plan = configure_engines(host, ctx)
    assert [change.path for change in plan.files] == [ETC_HOSTS]
    assert plan.handler is None and plan.commands == []
    assert f"{NAME} -> replica1 (192.0.2.21); moved from deploy1" in plan.summary()


def test_a_fresh_node_trusts_the_name_and_maps_it():
    plan = configure_engines(docker_host(files={ETC_HOSTS: DEBIAN_HOSTS}), placed_ctx())
    assert {change.path for change in plan.files} == {ETC_HOSTS, "/etc/docker/daemon.json"}
    daemon = next(change for change in plan.files if change.path == "/etc/docker/daemon.json")
    assert f"{NAME}:4000" in daemon.after


def test_a_conflicting_hosts_line_fails_the_node_before_anything_is_written():
    host = docker_host(files={ETC_HOSTS: f"10.9.9.9 {NAME}\n"})
    plan = place_node(host, placed_ctx())
    assert plan.error and "maps kolla-registry.internal already" in plan.error


# --- which address each host uses ---------------------------------------------------------------


def address_for(serving: bool) -> RegistryAccess:
    inventory = make_inventory({"hostname": NAME, "address": "192.0.2.10"})
    replicas = (Host("replica1", "192.0.2.21"),)
    inventory = replace(inventory, registry=replace(inventory.registry, replicas=replicas))
    return RegistryAccess(inventory, serving=serving)


def test_nodes_use_the_name_and_instances_their_own_address_when_serving():
    access = Access("192.0.2.10")
    consumer, serving = address_for(False), address_for(True)
    node, replica, deploy = Host("node1", "192.0.2.11"), Host("replica1", "192.0.2.21"), Host("deploy1", "192.0.2.10")
    assert consumer.seen_from(node, access).address == NAME
    assert consumer.seen_from(deploy, access).address == NAME  # kolla-globals writes the name
    assert serving.seen_from(replica, access).address == "192.0.2.21"
    assert serving.seen_from(deploy, access).address == "192.0.2.10"
    assert serving.seen_from(node, access).address == NAME
    assert serving.instances() == INSTANCES


def test_without_a_name_everyone_uses_the_address():
    address = RegistryAccess(make_inventory({"address": "192.0.2.10"}))
    assert address.seen_from(Host("node1", "192.0.2.11"), Access("192.0.2.10")).address == "192.0.2.10"
    assert RegistrySettings().storage == "filesystem"


def test_status_shows_each_nodes_instance():
    inventory = address_for(False).inventory
    status = Status(inventory, "/etc/kolla/globals.yml", lambda: address_for(True).known_or_empty().address)
    assert host_role(inventory, Host("replica1", "192.0.2.21")) == REPLICA
    mapped = host_facts(files={ETC_HOSTS: f"192.0.2.21 {NAME}  # kolla-registry\n"})
    assert status.instance_of(mapped) == "replica1"
    assert status.instance_of(host_facts(files={ETC_HOSTS: f"192.0.2.10 {NAME}  # kolla-registry\n"})) == "deploy1"
    assert status.instance_of(host_facts(files={ETC_HOSTS: f"10.9.9.9 {NAME}  # kolla-registry\n"})) == (
        "10.9.9.9 (not an instance)"
    )
    assert status.instance_of(HostFacts()) == ""
    row = HostStatus("node1", "target", "192.0.2.11", True, instance="replica1")
    assert "instance" in status_table([row], f"{NAME}:4000") and "replica1" in status_table([row], f"{NAME}:4000")


def test_prune_reads_everything_create_registry_compares_so_a_shared_store_s_registry_is_as_deployed(secret):
    ctx = s3_ctx(secret)
    read = [section.shell for section in PruneRegistry([], 0).sections(ctx)]
    # The env file among the files read: without it the container would seem not to be as deploy-host makes it.
    assert any(ENV_FILE in shell for shell in read)
    assert any(ENV_FILE in section.shell for section in container_sections(ctx))
