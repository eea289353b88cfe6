"""status: facts and the registry's answer in, one row per host, a table and JSON out."""

from __future__ import annotations

import json

import pytest

from fabfile.docker import status as st
from fabfile.inventory import Host
from fabfile.podman.registries import DROPIN, dropin_text
from fabfile.remote.facts import DAEMON_JSON, DEFAULT_DOCKER

from .factories import REGISTRY, docker_host, fresh_debian, podman_host

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
    assert lines[1].split() == ["host", "role", "reachable", "os", "engine", "trusted", "/v2/", "catalog"]
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


PODMAN_TRUSTING = {DROPIN: dropin_text(REGISTRY, insecure=True)}


@pytest.mark.parametrize(
    "facts, engine, trusted",
    [
        pytest.param(docker_host("26.1.5", files=TRUSTING), "docker 26.1.5", True, id="docker"),
        pytest.param(podman_host("5.4.2", files=PODMAN_TRUSTING), "podman 5.4.2", True, id="podman"),
        pytest.param(podman_host("5.4.2"), "podman 5.4.2", False, id="podman-untrusted"),
        pytest.param(
            docker_host("20.10.24", podman_version="4.3.1", files={**TRUSTING, **PODMAN_TRUSTING}),
            "docker 20.10.24+podman 4.3.1",
            True,
            id="both",
        ),
        pytest.param(
            docker_host("20.10.24", podman_version="4.3.1", files=TRUSTING),
            "docker 20.10.24+podman 4.3.1",
            False,
            id="both-podman-untrusted",
        ),
        pytest.param(
            docker_host("26.1.5", docker_answers=False, files=TRUSTING), "docker 26.1.5 (not running)", True, id="down"
        ),
    ],
)
def test_the_engine_column_names_each_engine_and_trust_needs_both(facts, engine, trusted):
    row = st.host_status(NODE, st.TARGET, facts, REGISTRY, CATALOG)
    table = st.status_table([row], REGISTRY)

    assert engine in table and row.trusted is trusted
    assert json.loads(st.status_json([row], REGISTRY))["hosts"][0]["podman"] == facts.podman_version


def test_a_podman_entry_elsewhere_that_says_insecure_counts_as_trusted():
    facts = podman_host(files={"/etc/containers/registries.conf": f'[[registry]]\nlocation = "{REGISTRY}"\ninsecure = true\n'})

    assert st.trusted(facts, REGISTRY) is True
