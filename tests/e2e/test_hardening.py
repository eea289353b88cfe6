"""Hardening on the lab: host keys, a rejected reload, and errors that end as rows in the recap."""

from __future__ import annotations

import subprocess

import pytest

from .conftest import ensure_deployed, inventory_variant, reset_targets

pytestmark = pytest.mark.e2e


def registry_of(hosts) -> str:
    return f"{hosts.inventory.deploy_host.address}:{hosts.inventory.registry.port}"


def test_accept_new_saves_new_keys_and_refuses_a_changed_one(lab, hosts, fab, tmp_path):
    ensure_deployed(fab)
    reset_targets(hosts, ["node1", "node2"])
    known = tmp_path / "known_hosts"

    def edit(data):
        data["defaults"] = {
            **data.get("defaults", {}),
            "known_hosts": str(known),
            "host_key_policy": "accept-new",
        }
        for host in [data["deploy_host"], *data["targets"]]:
            host.pop("known_hosts", None)
            host.pop("host_key_policy", None)

    inventory = inventory_variant(lab.inventory, tmp_path, targets=["node1", "node2"], edit=edit)
    first = fab("configure-targets", inventory=inventory)
    assert first.code == 0, first.output
    ip = lab.node_ip("node1")
    saved = known.read_text().splitlines()
    assert any(line.split()[0] == ip for line in saved) and any(
        line.split()[0] == lab.node_ip("node2") for line in saved
    )

    # node1 now shows another key than the one saved: what a man in the middle would show.
    other = tmp_path / "other"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True)
    public = other.with_suffix(".pub").read_text().split()
    known.write_text(
        "".join(f"{ip} {public[0]} {public[1]}\n" if line.split()[0] == ip else line + "\n" for line in saved)
    )
    second = fab("configure-targets", inventory=inventory)
    assert second.code == 1, second.output
    refused = [line for line in second.output.splitlines() if line.startswith("node1 | configure-targets |")]
    assert refused and "UNREACHABLE | host key of root@" in refused[0] and "has CHANGED" in refused[0]
    assert refused[0].count("SHA256:") == 2
    assert "node2 | configure-targets | OK" in second.output


def test_a_reload_docker_rejects_is_undone_without_restarting_containers(lab, hosts, fab, tmp_path):
    ensure_deployed(fab)
    reset_targets(hosts, ["node3"])
    hosts.start_workload("node3")
    # A directive this dockerd does not know: written after it started, so only a reload reads it.
    hosts.run("node3", "echo '{\"kolla-registry-unknown-directive\": true}' > /etc/docker/daemon.json")
    before = hosts.run("node3", "cat /etc/docker/daemon.json")
    dockerd = hosts.docker_pid("node3")
    workload = hosts.containers("node3")
    inventory = inventory_variant(lab.inventory, tmp_path, targets=["node3"])
    try:
        result = fab("configure-targets", inventory=inventory)
        assert result.code == 1, result.output
        assert "node3 | configure-targets | FAILED |" in result.output
        assert "restored /etc/docker/daemon.json from backups; Docker running again" in result.output
        assert hosts.docker_pid("node3") == dockerd
        assert workload and hosts.containers("node3") == workload
        assert hosts.run("node3", "cat /etc/docker/daemon.json") == before
        assert (
            hosts.run("node3", "test -s /var/lib/kolla-registry/pending && echo left || echo none") == "none"
        )
    finally:
        reset_targets(hosts, ["node3"])


def test_errors_end_as_rows_in_one_recap(lab, hosts, fab, tmp_path):
    ensure_deployed(fab)
    reset_targets(hosts, ["node4", "node5"])
    hosts.run("node4", "printf 'DOCKER_OPTS=\"--insecure-registry x\\n' >> /etc/default/docker")
    try:
        inventory = inventory_variant(lab.inventory, tmp_path, targets=["node4", "node5"])
        result = fab("configure-targets", inventory=inventory)
        assert result.code == 1, result.output
        assert (
            "node4 | configure-targets | FAILED | /etc/default/docker: DOCKER_OPTS cannot be read "
            "(No closing quotation); left as it is" in result.output
        )
        assert "node5 | configure-targets | CHANGED" in result.output
        assert "Traceback" not in result.output and result.output.count("RECAP") == 1
    finally:
        hosts.run("node4", "sed -i '/--insecure-registry x$/d' /etc/default/docker")

    missing = tmp_path / "no-such-archive.tar"
    archived = inventory_variant(
        lab.inventory, tmp_path, registry={"image": "kolla-registry/absent:1", "image_archive": str(missing)}
    )
    result = fab("create-registry", inventory=archived)
    assert result.code == 1, result.output
    row = [line for line in result.output.splitlines() if line.startswith("deploy1 | create-registry |")]
    assert row and "FAILED | upload " in row[0] and f"upload of {missing} failed" in row[0]
    assert "Traceback" not in result.output and "RECAP" in result.output
    assert hosts.run("deploy1", "docker inspect -f '{{.State.Running}}' registry") == "true"
