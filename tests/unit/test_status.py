"""status: facts and the registry's answer in, one row per host, a table and JSON out."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from fabfile.docker import status as st
from fabfile.inventory import Host
from fabfile.remote.facts import DAEMON_JSON, DEFAULT_DOCKER

from .factories import REGISTRY, docker_host, fresh_debian, make_inventory

NODE = Host("node1", "192.0.2.11")
CATALOG = {
    "status": 200,
    "api": "registry/2.0",
    "repositories": ["openstack.kolla/keystone", "kolla-registry/probe"],
}
TRUSTING = {DAEMON_JSON: json.dumps({"insecure-registries": [REGISTRY]})}


@pytest.mark.parametrize(
    "files, expected",
    [
        pytest.param(TRUSTING, True, id="daemon-json"),
        pytest.param(
            {DEFAULT_DOCKER: f'DOCKER_OPTS="--insecure-registry={REGISTRY}"\n'}, True, id="docker-opts"
        ),
        pytest.param({DAEMON_JSON: '{"insecure-registries": ["other:5000"]}'}, False, id="another-registry"),
        pytest.param({}, False, id="unconfigured"),
        pytest.param({DAEMON_JSON: "{"}, None, id="unreadable"),
    ],
)
def test_trusted(files, expected):
    assert st.trusted(docker_host(files=files), REGISTRY) is expected


def test_row_of_a_configured_node():
    row = st.host_status(NODE, st.TARGET, docker_host(files=TRUSTING), REGISTRY, CATALOG)

    assert row == st.HostStatus(
        host="node1",
        role="target",
        address="192.0.2.11",
        reachable=True,
        os="Debian GNU/Linux 12 (bookworm)",
        docker="20.10.24+dfsg1",
        docker_running=True,
        trusted=True,
        registry_answers=True,
        repositories=CATALOG["repositories"],
    )


def test_row_of_a_node_that_cannot_reach_the_registry():
    answer = {"status": 0, "api": "", "repositories": [], "error": "[Errno 111] Connection refused"}

    row = st.host_status(NODE, st.TARGET, docker_host(), REGISTRY, answer)

    assert (row.trusted, row.registry_answers, row.registry_error) == (
        False,
        False,
        "[Errno 111] Connection refused",
    )


def test_row_when_the_registry_address_is_unknown():
    row = st.host_status(NODE, st.TARGET, docker_host(files=TRUSTING), "", {})

    assert row.trusted is None and row.registry_answers is None


ROWS = [
    st.host_status(Host("deploy1", "192.0.2.10"), st.DEPLOY, docker_host(files=TRUSTING), REGISTRY, CATALOG),
    st.host_status(NODE, st.TARGET, docker_host(), REGISTRY, CATALOG),
    st.host_status(Host("node2", "192.0.2.12"), st.TARGET, fresh_debian(), REGISTRY, {"error": "no curl"}),
    st.unreachable_status(
        Host("node3", "192.0.2.13"), st.TARGET, "SSH connection to root@192.0.2.13:22 refused"
    ),
]


def test_table_has_one_row_per_host_under_the_registry():
    lines = st.status_table(ROWS, REGISTRY).splitlines()

    assert lines[0] == f"registry: {REGISTRY}"
    assert lines[1].split() == ["host", "role", "reachable", "os", "docker", "trusted", "/v2/", "catalog"]
    rows = {line.split()[0]: line for line in lines[3:] if line.strip() and not line.startswith(" ")}
    assert rows["deploy1"].split()[-5:] == ["20.10.24+dfsg1", "yes", "yes", "2", "images"]
    assert rows["node1"].split()[-5:] == ["20.10.24+dfsg1", "no", "yes", "2", "images"]
    assert "not installed" in rows["node2"] and "no: no curl" in rows["node2"]
    assert "no: SSH connection" in rows["node3"] and rows["node3"].split()[-5:] == ["-"] * 5


def test_table_without_a_registry_says_why():
    text = st.status_table([st.host_status(NODE, st.TARGET, docker_host(), "", {})], "")

    assert text.splitlines()[0].startswith("registry: unknown (deployment host not reached")


def test_json_lists_every_host_with_its_catalog():
    data = json.loads(st.status_json(ROWS, REGISTRY))

    assert data["registry"] == REGISTRY
    assert [(h["host"], h["reachable"], h["trusted"]) for h in data["hosts"]] == [
        ("deploy1", True, True),
        ("node1", True, False),
        ("node2", True, False),
        ("node3", False, None),
    ]
    assert data["hosts"][0]["repositories"] == CATALOG["repositories"]
    assert data["hosts"][3]["reason"].startswith("SSH connection")


def test_a_deployment_host_listed_as_a_target_is_one_row_with_both_roles():
    inventory = make_inventory()
    both = replace(inventory, targets=(Host("ctl1", "192.0.2.10"), *inventory.targets))

    assert [st.host_role(both, host) for host in both.machines] == [st.BOTH, st.TARGET, st.TARGET]
    assert [host.name for host in both.machines] == ["deploy1", "node1", "node2"]
    assert [st.host_role(inventory, host) for host in inventory.machines] == [st.DEPLOY, st.TARGET, st.TARGET]
