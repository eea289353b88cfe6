"""Living beside the host's own setup: the procedure's DOCKER_OPTS, a deployment host that is
also a node, and kolla-ansible's bootstrap-servers rewriting daemon.json."""

from __future__ import annotations

import json

import pytest

from . import upstream
from .conftest import changed_steps, ensure_deployed, inventory_variant, registry_of, reset_targets

pytestmark = pytest.mark.e2e

DAEMON_JSON = "/etc/docker/daemon.json"
COPIED_UNIT = "/etc/systemd/system/docker.service"


def snapshot(hosts, name: str) -> str:
    return hosts.run(name, f"cat {DAEMON_JSON} 2>/dev/null || echo absent")


def restore(hosts, name: str, text: str) -> None:
    if text == "absent":
        hosts.run(name, f"rm -f {DAEMON_JSON}")
    else:
        hosts.write(name, DAEMON_JSON, text + "\n")
    hosts.run(name, "systemctl reset-failed docker; systemctl restart docker")


def sha(hosts, name: str, path: str) -> str:
    return hosts.run(name, f"sha256sum {path} | cut -d' ' -f1")


@pytest.fixture
def procedure_node(request, lab, hosts, deployed):
    """A node set up exactly as the procedure says: its own copy of the unit reading DOCKER_OPTS."""
    name = request.param
    registry = registry_of(hosts)
    reset_targets(hosts, [name])
    hosts.run(
        name,
        "cp -p /etc/default/docker /root/default-docker.orig && "
        f"cp /lib/systemd/system/docker.service {COPIED_UNIT} && "
        f"sed -i -e '/^\\[Service\\]/a EnvironmentFile=/etc/default/docker' "
        f"-e '/^ExecStart=/{{/DOCKER_OPTS/!s/$/ $DOCKER_OPTS/}}' {COPIED_UNIT} && "
        f"echo 'DOCKER_OPTS=\"--insecure-registry {registry}\"' >> /etc/default/docker && "
        "systemctl daemon-reload && systemctl restart docker",
    )
    yield name
    hosts.run(
        name,
        f"rm -f {COPIED_UNIT} && mv /root/default-docker.orig /etc/default/docker && systemctl daemon-reload",
    )
    reset_targets(hosts, [name])


@pytest.mark.parametrize("procedure_node", ["node2", "node5"], indirect=True, ids=["docker-20", "docker-26"])
def test_a_node_set_up_the_procedures_way_is_ok_with_no_change(procedure_node, lab, hosts, fab, tmp_path):
    name = procedure_node
    assert f"--insecure-registry {registry_of(hosts)}" in hosts.run(name, "ps -o args= -C dockerd")
    before = sha(hosts, name, "/etc/default/docker")
    pid = hosts.docker_pid(name)
    inventory = inventory_variant(lab.inventory, tmp_path, targets=[name])
    result = fab("configure-targets", inventory=inventory)
    assert result.code == 0, result.output
    # Nothing changed, so trust is proven the cheap way: the probe resolved through dockerd, nothing downloaded.
    assert f"{name} | configure-targets | OK" in result.output and "resolved probe" in result.output
    assert changed_steps(result.output) == []
    assert sha(hosts, name, "/etc/default/docker") == before
    assert snapshot(hosts, name) == "absent"
    assert hosts.docker_pid(name) == pid


def test_a_deployment_host_that_is_also_a_node_is_configured_once_alike(lab, hosts, fab, tmp_path):
    def deploy1_also_a_target(data: dict) -> None:
        data["targets"] = [dict(data["deploy_host"]), *data["targets"]]

    inventory = inventory_variant(lab.inventory, tmp_path, targets=["node1"], edit=deploy1_also_a_target)
    deployed = fab("deploy-host", inventory=inventory)
    assert deployed.code == 0, deployed.output
    before, pid = snapshot(hosts, "deploy1"), hosts.docker_pid("deploy1")
    configured = fab("configure-targets", inventory=inventory)
    assert configured.code == 0, configured.output
    assert "deploy1 | configure-targets | OK" in configured.output
    assert (snapshot(hosts, "deploy1"), hosts.docker_pid("deploy1")) == (before, pid)
    again = fab("deploy-host", inventory=inventory)
    assert again.code == 0 and changed_steps(again.output) == [], again.output
    shown = fab("status", "--json", inventory=inventory)
    assert shown.code == 0, shown.output
    rows = json.loads(shown.output[shown.output.index("{") :])["hosts"]
    assert [row["host"] for row in rows].count("deploy1") == 1
    assert next(row for row in rows if row["host"] == "deploy1")["role"] == "deploy+target"


# What kolla-ansible's docker role writes (roles/docker/templates/daemon.json.j2 with
# docker_registry_insecure), replacing the file whole, before it restarts Docker.
def kolla_daemon_json(registry: str) -> str:
    config = {
        "bridge": "none",
        "ip-forward": False,
        "iptables": False,
        "log-opts": {"max-file": "5", "max-size": "50m"},
        "insecure-registries": [registry],
    }
    return json.dumps(config, indent=4) + "\n"


def registry_network(hosts) -> str:
    return hosts.run("deploy1", "docker inspect -f '{{.HostConfig.NetworkMode}}' registry")


def catalog(hosts, node: str) -> list[str]:
    return json.loads(hosts.run(node, f"curl -sf -m 10 http://{registry_of(hosts)}/v2/_catalog"))[
        "repositories"
    ]


@pytest.fixture
def bridged_registry(lab, hosts, fab, tmp_path):
    """deploy1's registry published with -p (the procedure's way, as an older deploy-host made it),
    with one more image than the probe; node1 configured. Both come back as they were."""
    bridge = inventory_variant(lab.inventory, tmp_path, registry={"network": "bridge"})
    result = fab("deploy-host", inventory=bridge)
    assert result.code == 0, result.output
    assert registry_network(hosts) != "host"
    upstream.synced(fab, tmp_path, ["kolla/keep:1"], inventory=bridge)
    reset_targets(hosts, ["node1"])
    assert fab("-H", "node1", "configure-targets").code == 0
    kept = {name: snapshot(hosts, name) for name in ("deploy1", "node1")}
    yield bridge
    for name, text in kept.items():
        restore(hosts, name, text)
    ensure_deployed(fab)


def test_bridged_registry_is_warned_about_then_moved_to_host_networking_with_its_images(
    bridged_registry, lab, hosts, fab
):
    warned = fab("status", "--json", inventory=bridged_registry)
    assert warned.code == 0, warned.output
    deploy_row = json.loads(warned.output[warned.output.index("{") :])["hosts"][0]
    assert deploy_row["host"] == "deploy1" and "-p" in deploy_row["kolla"]
    before = catalog(hosts, "node1")
    assert "kolla/keep" in before

    moved = fab("deploy-host")
    assert moved.code == 0, moved.output
    assert "deploy1 | create-registry | CHANGED" in moved.output
    assert registry_network(hosts) == "host"
    assert catalog(hosts, "node1") == before
    again = fab("deploy-host")
    assert again.code == 0 and changed_steps(again.output) == [], again.output


def test_kolla_bootstrap_servers_rewrite_leaves_the_registry_answering_and_nothing_to_change(
    bridged_registry, lab, hosts, fab
):
    assert fab("deploy-host").code == 0  # host networking, the default
    registry = registry_of(hosts)
    for name in ("deploy1", "node1"):
        hosts.write(name, DAEMON_JSON, kolla_daemon_json(registry))
        hosts.run(name, "systemctl restart docker")
    hosts.run(
        "deploy1", "for i in $(seq 50); do curl -sf -m 2 http://127.0.0.1:4000/v2/ && break; sleep 0.2; done"
    )

    assert "kolla-registry/probe" in catalog(hosts, "node1")
    hosts.run(
        "node1",
        f"docker rmi -f {registry}/kolla/keep:1 >/dev/null 2>&1; docker pull -q {registry}/kolla/keep:1",
    )
    after = {name: snapshot(hosts, name) for name in ("deploy1", "node1")}
    configured = fab("configure-targets", "-H", "node1")
    assert configured.code == 0, configured.output
    assert changed_steps(configured.output) == []
    deployed = fab("deploy-host")
    assert deployed.code == 0 and changed_steps(deployed.output) == [], deployed.output
    assert {name: snapshot(hosts, name) for name in ("deploy1", "node1")} == after
    # With globals.yml naming the registry as kolla-globals writes it, status sees nothing to lose.
    had_globals = hosts.run("deploy1", "test -e /etc/kolla && echo yes || echo no") == "yes"
    try:
        assert fab("kolla-globals").code == 0
        shown = fab("status", "--json", "-H", "deploy1,node1")
        assert shown.code == 0, shown.output
        notes = {
            row["host"]: row["kolla"] for row in json.loads(shown.output[shown.output.index("{") :])["hosts"]
        }
        assert notes == {"deploy1": "", "node1": ""}
    finally:
        if not had_globals:
            hosts.run("deploy1", "rm -rf /etc/kolla")
