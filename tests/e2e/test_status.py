"""status on a mix of nodes: one configured, one never configured, one switched off."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import pytest

from .conftest import ensure_deployed, inventory_variant

pytestmark = pytest.mark.e2e

CONFIGURED, UNCONFIGURED, STOPPED = "node1", "node2", "node3"
DAEMON_JSON = "/etc/docker/daemon.json"


def snapshot(hosts, name: str) -> str | None:
    encoded = hosts.run(name, f"if [ -e {DAEMON_JSON} ]; then base64 -w0 {DAEMON_JSON}; else echo absent; fi")
    return None if encoded == "absent" else encoded


def restore(hosts, name: str, encoded: str | None) -> None:
    """Put daemon.json back as it was, restarting Docker only when it differs."""
    if snapshot(hosts, name) == encoded:
        return
    if encoded is None:
        hosts.run(name, f"rm -f {DAEMON_JSON} && systemctl restart docker")
    else:
        text = base64.b64decode(encoded).decode()
        quoted = base64.b64encode(text.encode()).decode()
        hosts.run(name, f"echo {quoted} | base64 -d > {DAEMON_JSON} && systemctl restart docker")


@pytest.fixture(scope="module")
def mixed(lab, fab, hosts, tmp_path_factory):
    """An inventory of three targets: node1 configured, node2 fresh, node3 stopped; all as before after."""
    ensure_deployed(fab)
    inventory = inventory_variant(
        Path(lab.inventory), tmp_path_factory.mktemp("status"), targets=[CONFIGURED, UNCONFIGURED, STOPPED]
    )
    kept = snapshot(hosts, UNCONFIGURED)
    hosts.run(
        UNCONFIGURED, f"rm -f {DAEMON_JSON} /var/lib/kolla-registry/pending && systemctl restart docker"
    )
    configured = fab("-H", CONFIGURED, "configure-targets", inventory=inventory)
    assert configured.code == 0, configured.output
    lab.stop_node(STOPPED)
    try:
        yield inventory
    finally:
        lab.start_node(STOPPED)
        restore(hosts, UNCONFIGURED, kept)


def cells(output: str, host: str) -> dict[str, str]:
    """One row of the status table, by column header (columns are split where the dashes are)."""
    lines = output.splitlines()
    rule = next(index for index, line in enumerate(lines) if line.startswith("----"))
    spans = [(m.start(), m.end()) for m in re.finditer(r"-+", lines[rule])]
    header = lines[rule - 1]
    row = next(line for line in lines[rule:] if line.startswith(f"{host} "))
    return {header[a:b].strip(): row[a:b].strip() for a, b in spans}


def rows(output: str) -> dict[str, str]:
    return {line.split()[0]: line for line in output.splitlines() if line.startswith(("deploy1 ", "node"))}


def test_status_table_reports_each_node_as_it_is(mixed, fab, hosts):
    before = snapshot(hosts, UNCONFIGURED)
    result = fab("status", inventory=mixed)

    # A switched-off host fails the run: exit 1, every other row shown all the same.
    assert result.code == 1, result.output
    registry = f"{hosts.inventory.deploy_host.address}:{hosts.inventory.registry.port}"
    # A plain registry without login is named as such, with the setting that secures it.
    assert result.output.splitlines()[0] == (
        f"registry: {registry} (plain HTTP, no login: anyone who reaches its port can pull any image, and anyone "
        "on the way can swap what nodes pull; set registry: {tls: self-signed, auth: htpasswd} for TLS and a login)"
    )
    shown = rows(result.output)
    assert set(shown) == {"deploy1", CONFIGURED, UNCONFIGURED, STOPPED}
    for name, trusted in (("deploy1", "yes"), (CONFIGURED, "yes"), (UNCONFIGURED, "no")):
        row = cells(result.output, name)
        assert row["reachable"] == "yes" and row["os"] == "Debian GNU/Linux 12 (bookworm)"
        assert row["engine"].startswith("docker 20.10")
        # /v2/ answers plain HTTP either way
        assert (row["trusted"], row["/v2/"]) == (trusted, "yes") and row["catalog"].endswith(
            ("image", "images")
        )
    # kolla-ansible's bootstrap-servers would drop the configured node's trust: no globals.yml says it.
    assert cells(result.output, CONFIGURED)["after kolla bootstrap-servers"].startswith("trust lost")
    assert cells(result.output, "deploy1")["after kolla bootstrap-servers"] == "-"
    # A switched-off host does not answer at all: SSH times out (or is refused).
    assert shown[STOPPED].split()[2:4] == ["no:", "SSH"] and shown[STOPPED].split()[-5:] == ["-"] * 5
    # Read-only: the unconfigured node is still unconfigured.
    assert snapshot(hosts, UNCONFIGURED) == before is None


def test_status_json(mixed, fab):
    result = fab("status", "--json", inventory=mixed)

    assert result.code == 1, result.output
    data = json.loads(result.output)
    assert data["failed"] is True and data["totals"][STOPPED]["unreachable"] == 1
    by_host = {host["host"]: host for host in data["hosts"]}
    assert [host["host"] for host in data["hosts"]] == ["deploy1", CONFIGURED, UNCONFIGURED, STOPPED]
    assert by_host["deploy1"]["role"] == "deploy" and by_host[CONFIGURED]["role"] == "target"
    assert by_host[CONFIGURED]["trusted"] is True and by_host[UNCONFIGURED]["trusted"] is False
    for name in ("deploy1", CONFIGURED, UNCONFIGURED):
        assert by_host[name]["reachable"] and by_host[name]["docker_running"]
        assert by_host[name]["docker"].startswith("20.10")
        assert by_host[name]["registry_answers"] is True
        assert "kolla-registry/probe" in by_host[name]["repositories"]
    assert by_host["deploy1"]["exposure"].startswith("plain HTTP, no login")
    assert by_host[STOPPED]["reachable"] is False
    assert by_host[STOPPED]["trusted"] is None and by_host[STOPPED]["repositories"] == []
