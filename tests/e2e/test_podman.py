"""A Podman node (Debian 13, Podman 5, no Docker): trusted by a registries.conf.d drop-in, pulls the probe."""

from __future__ import annotations

import json

import pytest

from .conftest import (
    PODMAN_DROPIN,
    changed_steps,
    ensure_deployed,
    inventory_variant,
    registry_of,
    reset_targets,
)

pytestmark = pytest.mark.e2e

NODE = "node6"
SITE_DROPIN = "/etc/containers/registries.conf.d/99-site.conf"
# pull-images takes names relative to the upstream; it pulls them from the lab's registry only.
PROBE_ONLY = {"registry": "quay.io", "names": ["kolla-registry/probe:latest"]}


@pytest.fixture(scope="module")
def podman_node(lab, hosts, fab, tmp_path_factory):
    """node6 as a fresh Podman node, and an inventory with it as the only target."""
    assert lab.profile(NODE) == "trixie-podman"
    ensure_deployed(fab)
    reset_targets(hosts, [NODE])
    return inventory_variant(lab.inventory, tmp_path_factory.mktemp("podman"), targets=[NODE])


@pytest.fixture(scope="module")
def configured(podman_node, fab):
    result = fab("configure-targets", inventory=podman_node)
    assert result.code == 0, result.output
    return result


def probe(hosts) -> str:
    return f"{registry_of(hosts)}/kolla-registry/probe:latest"


def test_a_podman_node_gets_a_drop_in_and_pulls_the_probe(configured, hosts):
    assert f"{NODE} | configure-targets | CHANGED" in configured.output
    assert "pulled probe with podman" in configured.output
    assert "podman 5." in configured.output
    dropin = hosts.run(
        NODE,
        f'python3 -c \'import tomllib,json;print(json.dumps(tomllib.load(open("{PODMAN_DROPIN}","rb"))))\'',
    )
    assert json.loads(dropin)["registry"] == [{"location": registry_of(hosts), "insecure": True}]
    registries = json.loads(hosts.run(NODE, "podman info --format '{{json .Registries}}'"))
    assert registries[registry_of(hosts)]["Insecure"] is True
    hosts.run(NODE, f"podman rmi -f {probe(hosts)} >/dev/null 2>&1; podman pull -q {probe(hosts)}")
    assert hosts.run(NODE, "test -e /etc/docker/daemon.json || echo absent") == "absent"


def test_a_second_run_changes_nothing(configured, podman_node, fab, hosts):
    mtime = hosts.run(NODE, f"stat -c %Y {PODMAN_DROPIN}")
    again = fab("configure-targets", inventory=podman_node)
    assert again.code == 0, again.output
    assert changed_steps(again.output) == []
    assert f"{NODE} | configure-targets | OK" in again.output
    assert hosts.run(NODE, f"stat -c %Y {PODMAN_DROPIN}") == mtime


def test_a_conflicting_entry_elsewhere_is_named_and_left_alone(configured, podman_node, fab, hosts):
    site = f'[[registry]]\nlocation = "{registry_of(hosts)}"\ninsecure = false\n'
    hosts.write(NODE, SITE_DROPIN, site)
    try:
        refused = fab("configure-targets", inventory=podman_node)
        assert refused.code == 1, refused.output
        assert f"{NODE} | configure-targets | FAILED" in refused.output
        assert SITE_DROPIN in refused.output
        assert hosts.run(NODE, f"cat {SITE_DROPIN}") + "\n" == site
    finally:
        hosts.run(NODE, f"rm -f {SITE_DROPIN}")
    fixed = fab("configure-targets", inventory=podman_node)
    assert fixed.code == 0, fixed.output


def test_status_shows_the_engine_and_its_trust(configured, podman_node, fab):
    result = fab("status", "--json", inventory=podman_node)
    assert result.code == 0, result.output
    rows = {row["host"]: row for row in json.loads(result.output[result.output.index("{") :])["hosts"]}
    assert rows[NODE]["podman"].startswith("5.") and rows[NODE]["trusted"] is True


def test_pull_images_pulls_with_podman(configured, podman_node, fab, hosts, tmp_path):
    inventory = inventory_variant(podman_node, tmp_path, images=PROBE_ONLY)
    hosts.run(NODE, f"podman rmi -f {probe(hosts)} >/dev/null 2>&1 || true")
    pulled = fab("pull-images", inventory=inventory)
    assert pulled.code == 0, pulled.output
    assert f"{NODE} | pull-images | CHANGED" in pulled.output
    assert hosts.run(NODE, f"podman image exists {probe(hosts)} && echo yes") == "yes"
    again = fab("pull-images", inventory=inventory)
    assert again.code == 0 and f"{NODE} | pull-images | OK" in again.output, again.output
