"""Debian 13 with Docker 26: a fresh trixie deployment host and a trixie target, as on bookworm."""

from __future__ import annotations

import json

import pytest

from .conftest import changed_steps, inventory_variant

pytestmark = pytest.mark.e2e

DEPLOY, TARGET = "node5", "node4"


@pytest.fixture(scope="module")
def trixie(lab, hosts, fab, tmp_path_factory):
    """node5 recreated as a fresh Debian 13 host without Docker, deploying to node4 (Docker 26).

    Both come back as the suite's trixie-docker nodes afterwards.
    """
    lab.reset_node(DEPLOY, "trixie")
    lab.reset_node(TARGET)

    def deploy_from_node5(data: dict) -> None:
        data["deploy_host"] = {"name": DEPLOY, "address": lab.node_ip(DEPLOY)}

    inventory = inventory_variant(
        lab.inventory, tmp_path_factory.mktemp("trixie"), targets=[TARGET], edit=deploy_from_node5
    )
    yield inventory
    lab.reset_node(DEPLOY, "trixie-docker")
    lab.reset_node(TARGET)


@pytest.fixture(scope="module")
def trixie_deployed(trixie, fab):
    result = fab("deploy-host", inventory=trixie, timeout=1200)
    assert result.code == 0, result.output
    return result


def test_deploy_host_installs_docker_26_and_runs_the_registry(trixie_deployed, hosts, lab):
    assert "node5 | install-docker | CHANGED" in trixie_deployed.output
    release = hosts.run(DEPLOY, ". /etc/os-release; echo $VERSION_CODENAME")
    assert release == "trixie"
    assert hosts.run(DEPLOY, "docker version --format '{{.Server.Version}}'").startswith("26.")
    registry = f"{lab.node_ip(DEPLOY)}:4000"
    catalog = hosts.run(TARGET, f"curl -sf http://{registry}/v2/_catalog")
    assert "kolla-registry/probe" in json.loads(catalog)["repositories"]


def test_a_second_deploy_changes_nothing(trixie_deployed, trixie, fab):
    again = fab("deploy-host", inventory=trixie)
    assert again.code == 0, again.output
    assert changed_steps(again.output) == []


def test_a_docker_26_target_pulls_and_a_second_run_changes_nothing(trixie_deployed, trixie, fab, hosts):
    first = fab("configure-targets", inventory=trixie)
    assert first.code == 0, first.output
    assert "node4 | configure-targets | CHANGED" in first.output and "pulled probe" in first.output
    pid = hosts.docker_pid(TARGET)
    again = fab("configure-targets", inventory=trixie)
    assert again.code == 0, again.output
    assert changed_steps(again.output) == []
    assert hosts.docker_pid(TARGET) == pid


def test_dockerd_validate_refuses_a_daemon_json_docker_26_would_not_start_with(
    trixie_deployed, trixie, fab, hosts
):
    # A directive this dockerd does not know, written behind its back (it runs on the old file).
    unknown = '{"no-such-directive": true}\n'
    hosts.write(TARGET, "/etc/docker/daemon.json", unknown)
    pid = hosts.docker_pid(TARGET)
    refused = fab("configure-targets", inventory=trixie)
    assert refused.code == 1, refused.output
    assert "node4 | configure-targets | FAILED" in refused.output
    assert "no-such-directive" in refused.output
    assert hosts.run(TARGET, "cat /etc/docker/daemon.json") + "\n" == unknown
    assert hosts.docker_pid(TARGET) == pid

    hosts.write(TARGET, "/etc/docker/daemon.json", "{}\n")
    fixed = fab("configure-targets", inventory=trixie)
    assert fixed.code == 0, fixed.output
    assert "pulled probe" in fixed.output
    assert hosts.docker_pid(TARGET) == pid  # insecure-registries alone: a reload
