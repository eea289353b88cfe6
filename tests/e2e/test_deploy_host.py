"""deploy-host on a fresh lab deployment host (no Docker), then again."""

from __future__ import annotations

import urllib.request

import pytest

from .conftest import changed_steps

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def fresh_deploy_host(lab, hosts):
    lab.reset_node("deploy1")
    return hosts


def test_check_mode_changes_nothing_on_a_fresh_host(fresh_deploy_host, fab):
    before = fresh_deploy_host.run("deploy1", "ls -la --time-style=full-iso /etc /var/lib | sha256sum")
    result = fab("deploy-host", "--check")
    assert result.code == 0, result.output
    assert "check mode: nothing was changed" in result.output
    assert "deploy1 | install-docker | CHANGED" in result.output
    after = fresh_deploy_host.run("deploy1", "ls -la --time-style=full-iso /etc /var/lib | sha256sum")
    assert before == after
    assert fresh_deploy_host.run("deploy1", "command -v dockerd || echo none") == "none"


def test_deploy_host_brings_up_a_registry(fresh_deploy_host, fab, lab):
    result = fab("deploy-host")
    assert result.code == 0, result.output
    for step in ("install-docker", "create-registry", "trust-registry", "restart-docker"):
        assert f"deploy1 | {step} | CHANGED" in result.output
    assert "deploy1 | verify-registry | OK" in result.output
    address = fresh_deploy_host.host("deploy1").address
    with urllib.request.urlopen(f"http://{address}:4000/v2/", timeout=10) as response:
        assert response.headers["Docker-Distribution-Api-Version"] == "registry/2.0"
    mounts = fresh_deploy_host.run(
        "deploy1", "docker inspect -f '{{range .Mounts}}{{.Name}}{{end}}' registry"
    )
    assert mounts == "registry"


def test_second_run_changes_nothing(fresh_deploy_host, deployed, fab):
    pid = fresh_deploy_host.docker_pid("deploy1")
    containers = fresh_deploy_host.containers("deploy1")
    result = fab("deploy-host")
    assert result.code == 0, result.output
    assert changed_steps(result.output) == []
    assert fresh_deploy_host.docker_pid("deploy1") == pid
    assert fresh_deploy_host.containers("deploy1") == containers


def test_a_single_step_runs_alone_with_dash_h(fresh_deploy_host, deployed, fab):
    fresh_deploy_host.run("deploy1", "docker stop registry")
    result = fab("-H", "deploy1", "create-registry")
    assert result.code == 0, result.output
    assert "deploy1 | create-registry | CHANGED | docker start registry" in result.output
    assert fresh_deploy_host.run("deploy1", "docker inspect -f '{{.State.Running}}' registry") == "true"
