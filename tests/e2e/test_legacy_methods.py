"""The procedure's own methods on real hosts: DOCKER_OPTS with its unit changes, MountFlags."""

from __future__ import annotations

import pytest

from .conftest import inventory_variant, reset_targets

pytestmark = pytest.mark.e2e

# What Docker CE's unit looks like: dockerd without $DOCKER_OPTS, no EnvironmentFile.
DOCKER_CE_DROPIN = "/etc/systemd/system/docker.service.d/50-docker-ce.conf"
DOCKER_CE_TEXT = """[Service]
EnvironmentFile=
ExecStart=
ExecStart=/usr/sbin/dockerd -H fd:// --containerd=/run/containerd/containerd.sock
"""
OWN_DROPINS = (
    "/etc/systemd/system/docker.service.d/kolla-registry-env.conf",
    "/etc/systemd/system/docker.service.d/kolla-registry-opts.conf",
)


@pytest.fixture
def docker_ce_node(lab, hosts, deployed):
    """node5 with a unit that ignores /etc/default/docker, restored afterwards."""
    hosts.write("node5", DOCKER_CE_DROPIN, DOCKER_CE_TEXT)
    hosts.run("node5", "cp -p /etc/default/docker /root/default-docker.orig && systemctl daemon-reload")
    reset_targets(hosts, ["node5"])
    yield "node5"
    hosts.run(
        "node5",
        f"rm -f {DOCKER_CE_DROPIN} {' '.join(OWN_DROPINS)} && mv /root/default-docker.orig /etc/default/docker"
        " && systemctl daemon-reload",
    )
    reset_targets(hosts, ["node5"])


def test_docker_opts_method_changes_the_unit_and_restarts(lab, hosts, fab, docker_ce_node, tmp_path):
    registry = f"{hosts.inventory.deploy_host.address}:{hosts.inventory.registry.port}"
    inventory = inventory_variant(
        lab.inventory, tmp_path, targets=["node5"], docker={"config_method": "docker-opts"}
    )
    pid = hosts.docker_pid("node5")
    result = fab("configure-targets", inventory=inventory)
    assert result.code == 0, result.output
    assert "Docker restart; pulled probe" in result.output
    for path in OWN_DROPINS:
        assert hosts.run("node5", f"test -f {path} && echo yes") == "yes"
    assert f"--insecure-registry {registry}" in hosts.run("node5", "cat /etc/default/docker")
    assert f"--insecure-registry {registry}" in hosts.run("node5", "ps -o args= -C dockerd")
    assert hosts.run("node5", "test -e /etc/docker/daemon.json || echo absent") == "absent"
    assert hosts.docker_pid("node5") != pid

    again = fab("configure-targets", inventory=inventory)
    assert again.code == 0, again.output
    assert "node5 | configure-targets | OK" in again.output


MOUNTFLAGS_DROPIN = "/etc/systemd/system/docker.service.d/kolla.conf"


def test_a_stale_mountflags_dropin_is_removed_with_a_backup(lab, hosts, fab, deployed):
    hosts.write("deploy1", MOUNTFLAGS_DROPIN, "[Service]\nMountFlags=shared\n")
    hosts.run("deploy1", "systemctl daemon-reload")
    result = fab("-H", "deploy1", "install-docker", "restart-docker")
    assert result.code == 0, result.output
    assert f"MountFlags=shared removed from {MOUNTFLAGS_DROPIN}" in result.output
    assert "deploy1 | restart-docker | CHANGED" in result.output
    assert hosts.run("deploy1", f"test -e {MOUNTFLAGS_DROPIN} || echo gone") == "gone"
    backups = hosts.run("deploy1", "ls /var/backups/kolla-registry/")
    assert "etc_systemd_system_docker.service.d_kolla.conf." in backups
    assert hosts.run("deploy1", "systemctl show -p MountFlags --value docker") in ("", "0")
    assert hosts.run("deploy1", "systemctl is-active docker") == "active"
