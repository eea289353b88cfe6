"""configure-targets on the lab's targets: trust, reload, pull; then again."""

from __future__ import annotations

import json

import pytest

from .conftest import changed_steps, ensure_deployed, holds_image, inventory_variant, reset_targets, trusted

pytestmark = pytest.mark.e2e

OTHER_SETTINGS = {
    "log-driver": "json-file",
    "log-opts": {"max-size": "10m"},
    "insecure-registries": ["legacy.invalid:5000"],
}


@pytest.fixture(scope="module")
def targets(lab, hosts, fab):
    """Targets as a fresh cloud has them; node2 already has its own daemon.json."""
    ensure_deployed(fab)
    names = [host.name for host in hosts.inventory.targets]
    reset_targets(hosts, names)
    hosts.run(
        "node2", f"echo '{json.dumps(OTHER_SETTINGS)}' > /etc/docker/daemon.json && systemctl restart docker"
    )
    hosts.start_workload("node1")
    return names


@pytest.fixture(scope="module")
def configured(targets, fab):
    """The targets after a configure-targets run: the module's earlier test made it, or this one does.

    So that a test about what comes after the first run also passes when it runs alone.
    """
    result = fab("configure-targets")
    assert result.code == 0, result.output
    return targets


def probe(hosts) -> str:
    registry = f"{hosts.inventory.deploy_host.address}:{hosts.inventory.registry.port}"
    return f"{registry}/kolla-registry/probe:latest"


def test_check_mode_reports_but_changes_nothing(targets, hosts, fab):
    result = fab("configure-targets", "--check", "--diff")
    assert result.code == 0, result.output
    for name in targets:
        assert f"{name} | configure-targets | CHANGED" in result.output
    assert "+++ after: /etc/docker/daemon.json" in result.output
    assert hosts.run("node1", "cat /etc/docker/daemon.json 2>/dev/null || echo absent") == "absent"


def test_every_target_trusts_the_registry_and_pulls(targets, hosts, fab):
    pids = {name: hosts.docker_pid(name) for name in targets}
    workload = hosts.containers("node1")
    result = fab("configure-targets")
    assert result.code == 0, result.output
    for name in targets:
        assert f"{name} | configure-targets | CHANGED" in result.output
        assert holds_image(hosts, name, probe(hosts))
        # insecure-registries is reloadable: dockerd kept its PID (podman has no daemon).
        assert hosts.docker_pid(name) == pids[name]
    assert workload and hosts.containers("node1") == workload
    config = json.loads(hosts.run("node2", "cat /etc/docker/daemon.json"))
    registry = probe(hosts).split("/")[0]
    assert config == {**OTHER_SETTINGS, "insecure-registries": ["legacy.invalid:5000", registry]}


def test_second_run_changes_nothing(configured, hosts, fab):
    before = {name: (hosts.docker_pid(name), hosts.containers(name)) for name in configured}
    result = fab("configure-targets")
    assert result.code == 0, result.output
    assert changed_steps(result.output) == []
    after = {name: (hosts.docker_pid(name), hosts.containers(name)) for name in configured}
    assert after == before


def test_a_backup_of_each_changed_file_is_kept(configured, hosts):
    names = hosts.run("node2", "ls /var/backups/kolla-registry/").split()
    backups = [name for name in names if name.startswith("etc_docker_daemon.json.")]
    kept = [json.loads(hosts.run("node2", f"cat /var/backups/kolla-registry/{name}")) for name in backups]
    assert OTHER_SETTINGS in kept


def test_a_sudo_user_configures_a_node(lab, hosts, fab, deployed, tmp_path):
    reset_targets(hosts, ["node4"])
    as_operator = inventory_variant(lab.inventory, tmp_path, targets=["node4"], defaults={"user": "operator"})
    result = fab("configure-targets", inventory=as_operator)
    assert result.code == 0, result.output
    assert "node4 | configure-targets | CHANGED" in result.output
    assert probe(hosts).split("/")[0] in hosts.run("node4", "cat /etc/docker/daemon.json")
    assert hosts.run("node4", "stat -c %U /etc/docker/daemon.json") == "root"


def recap_of(output: str) -> str:
    """Everything from the (one) recap title on."""
    return output[output.index("RECAP") :]


def test_dash_h_with_an_unreachable_host_configures_the_others_in_one_recap(lab, hosts, fab, deployed):
    """``-H`` gives the task every host at once: one fan-out, one recap, one exit status."""
    down, others = "node1", ["node2", "node3"]
    registry = probe(hosts).split("/")[0]
    reset_targets(hosts, [*others, "node4"])
    lab.stop_node(down)
    try:
        result = fab("-H", ",".join([down, *others]), "configure-targets")
    finally:
        lab.start_node(down)
    assert result.code == 1, result.output
    assert f"{down} | configure-targets | UNREACHABLE | " in result.output
    for name in others:
        assert f"{name} | configure-targets | CHANGED" in result.output
        config = json.loads(hosts.run(name, "cat /etc/docker/daemon.json"))
        assert config == {"insecure-registries": [registry]}
        assert trusted(hosts, name, registry)
    assert result.output.count("RECAP") == 1, result.output
    recap = [line.split() for line in recap_of(result.output).splitlines()]
    rows = {words[0]: words[2] for words in recap if words[1:2] == ["configure-targets"]}
    assert rows == {down: "unreachable", **{name: "changed" for name in others}}, recap
    totals = {words[0]: words[1:] for words in recap if words[1:2] == [":"]}
    assert set(totals) == {down, *others}, recap
    assert totals[down] == [":", "ok=0", "changed=0", "failed=0", "unreachable=1", "skipped=0"]
    for name in others:
        assert totals[name] == [":", "ok=0", "changed=1", "failed=0", "unreachable=0", "skipped=0"]
    # Only the -H hosts: node4 was neither named nor touched.
    assert "node4" not in result.output
    assert hosts.run("node4", "cat /etc/docker/daemon.json 2>/dev/null || echo absent") == "absent"
