"""status: facts and the registry's answer in, one row per host, a table and JSON out."""

from __future__ import annotations

import json
from dataclasses import asdict, replace

import pytest
from invoke.exceptions import Exit

from fabfile.actions.status import Status
from fabfile.engine.report import Result, as_json, finish
from fabfile.engines.docker.paths import DAEMON_JSON, DEFAULT_DOCKER
from fabfile.engines.podman.paths import DROPIN
from fabfile.kolla.globals_yaml import kolla_insecure_registry
from fabfile.model.inventory import Host
from fabfile.model.outcome import OK, UNREACHABLE, Outcome
from fabfile.registry import status as st
from fabfile.tasks.status import status_rows

from .factories import (
    REGISTRY,
    container,
    docker_host,
    fresh_debian,
    make_ctx,
    make_inventory,
    podman_dropin,
    podman_host,
    run_on_host,
)

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


def status_json(rows: list) -> str:
    """The rows as ``fab status --json`` prints them: each a row of the one result, with its fields."""
    outcomes = [Outcome(row.host, "status", "ok", data=asdict(row)) for row in rows]
    return as_json(Result("status", outcomes, extra={"registry": REGISTRY}))


def test_json_lists_every_host_with_its_catalog():
    data = json.loads(status_json(ROWS))

    assert data["registry"] == REGISTRY
    assert [(h["host"], h["reachable"], h["trusted"]) for h in data["hosts"]] == [
        ("deploy1", True, True),
        ("node1", True, False),
        ("node2", True, False),
        ("node3", False, None),
    ]
    assert data["hosts"][0]["repositories"] == CATALOG["repositories"]
    assert data["hosts"][3]["reason"].startswith("SSH connection")


PODMAN_TRUSTING = {DROPIN: podman_dropin(REGISTRY, insecure=True)}


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
    assert json.loads(status_json([row]))["hosts"][0]["podman"] == facts.engine("podman").version


def test_a_podman_entry_elsewhere_that_says_insecure_counts_as_trusted():
    facts = podman_host(files={"/etc/containers/registries.conf": f'[[registry]]\nlocation = "{REGISTRY}"\ninsecure = true\n'})

    assert st.trusted(facts, REGISTRY) is True


def test_a_deployment_host_listed_as_a_target_is_one_row_with_both_roles():
    inventory = make_inventory()
    both = replace(inventory, targets=(Host("ctl1", "192.0.2.10"), *inventory.targets))

    assert [st.host_role(both, host) for host in both.machines] == [st.BOTH, st.TARGET, st.TARGET]
    assert [host.name for host in both.machines] == ["deploy1", "node1", "node2"]
    assert [st.host_role(inventory, host) for host in inventory.machines] == [st.DEPLOY, st.TARGET, st.TARGET]



# --- the status action and task ---------------------------------------------------------------


def test_the_status_action_reads_a_node_and_asks_the_catalog_from_there():
    ctx = make_ctx()
    action = Status(ctx.inventory, "/etc/kolla/globals.yml", lambda: ctx.registry_address)

    run = run_on_host(action, docker_host(files=TRUSTING), ctx, NODE, answers={"catalog": CATALOG})

    [row] = run.outcomes
    assert (row.step, row.status) == ("status", OK) and run.scripts == []
    assert run.asked["catalog"]["catalog"] == f"http://{REGISTRY}"
    expected = st.host_status(NODE, st.TARGET, docker_host(files=TRUSTING), REGISTRY, CATALOG, exposure=PLAIN)
    assert st.HostStatus(**row.data) == expected
    assert set(action.facts_of) == {"node1"}


PLAIN = (
    "plain HTTP, no login: anyone who reaches its port can pull any image, and anyone on the way can "
    "swap what nodes pull; "
    "set registry: {tls: self-signed, auth: htpasswd} for TLS and a login"
)


def test_a_plain_registry_is_named_as_such_above_the_table_and_in_every_row():
    ctx = make_ctx()
    action = Status(ctx.inventory, "/etc/kolla/globals.yml", lambda: ctx.registry_address)
    [row] = run_on_host(action, docker_host(files=TRUSTING), ctx, NODE, answers={"catalog": CATALOG}).outcomes

    shown = st.status_table([st.HostStatus(**row.data)], REGISTRY)

    assert row.data["exposure"] == PLAIN
    assert shown.splitlines()[0] == f"registry: {REGISTRY} ({PLAIN})"


def test_a_registry_with_tls_and_a_login_has_nothing_to_warn_of():
    ctx = make_ctx({"tls": "self-signed", "auth": "htpasswd"})
    action = Status(ctx.inventory, "/etc/kolla/globals.yml", lambda: ctx.registry_address)
    [row] = run_on_host(action, docker_host(registry_tls="200"), ctx, NODE, answers={"catalog": CATALOG}).outcomes

    assert row.data["exposure"] == "" and row.data["tls"] == "verified"
    assert st.status_table([st.HostStatus(**row.data)], REGISTRY).splitlines()[0] == f"registry: {REGISTRY}"


def test_an_unreachable_host_is_its_own_row_and_status_exits_1():
    inventory = make_inventory()
    told = st.host_status(NODE, st.TARGET, docker_host(), REGISTRY, CATALOG)
    reached = Outcome("node1", "status", OK, data=told.__dict__)
    result = Result("status", [reached, Outcome("node2", "status", UNREACHABLE, "SSH connection refused")])

    rows = status_rows(inventory, result)

    assert [(row.host, row.reachable, row.reason) for row in rows] == [
        ("node1", True, ""),
        ("node2", False, "SSH connection refused"),
    ]
    with pytest.raises(Exit) as exited:
        finish(result, render=lambda _: st.status_table(rows, REGISTRY))
    assert exited.value.code == 1
    finish(Result("status", [reached]), render=lambda _: st.status_table(rows[:1], REGISTRY))


# --- what kolla-ansible's bootstrap-servers would break ---------------------------------------

GLOBALS_PATH = "/etc/kolla/globals.yml"
MATCHING_GLOBALS = f'---\ndocker_registry: "{REGISTRY}"  # local\ndocker_registry_insecure: yes\n'
FLAGS = {DEFAULT_DOCKER: f'DOCKER_OPTS="--insecure-registry {REGISTRY}"\n'}
SET_GLOBALS = "trust lost: set docker_registry + docker_registry_insecure: true (fab kolla-globals)"


@pytest.mark.parametrize(
    "container, files, note",
    [
        pytest.param(container(network="host"), {}, "", id="host-network"),
        pytest.param(None, {}, "", id="no-registry"),
        pytest.param(container(network="bridge"), {}, "registry on -p stops answering", id="bridge"),
        pytest.param(
            container(network="bridge"),
            {DAEMON_JSON: '{"bridge": "none", "iptables": false}'},
            "registry on -p, Docker has no bridge: fab deploy-host",
            id="bridge-already-off",
        ),
    ],
)
def test_kolla_note_on_the_deployment_host_names_a_bridge_published_registry(container, files, note):
    facts = docker_host(container=container, files=files)

    found = st.kolla_note(facts, st.DEPLOY, "", False, None)

    assert (note in found) if note else found == ""
    assert st.kolla_note(facts, st.TARGET, "", False, None) == ""  # a target's container is not ours
    assert st.kolla_note(facts, st.BOTH, "", False, None) == found


@pytest.mark.parametrize(
    "files, globals_text, note",
    [
        pytest.param(TRUSTING, None, SET_GLOBALS, id="daemon-json-no-globals"),
        pytest.param(TRUSTING, "docker_registry: quay.io\n", SET_GLOBALS, id="daemon-json-upstream"),
        pytest.param(TRUSTING, MATCHING_GLOBALS.replace("yes", "no"), SET_GLOBALS, id="daemon-json-secure"),
        pytest.param(TRUSTING, MATCHING_GLOBALS, "", id="daemon-json-kept-by-kolla"),
        pytest.param(FLAGS, None, "these flags stop dockerd: configure-targets --repair", id="flags"),
        pytest.param(FLAGS, MATCHING_GLOBALS, "stop dockerd", id="flags-and-kolla-insecure"),
        pytest.param(FLAGS, "docker_registry_insecure: false\n", "", id="flags-kolla-adds-none"),
        pytest.param({}, None, "", id="not-trusted"),
        pytest.param({DAEMON_JSON: "{"}, None, "", id="unreadable"),
    ],
)
def test_kolla_note_on_a_target_says_what_keeps_the_trust(files, globals_text, note):
    found = st.kolla_note(docker_host(files=files), st.TARGET, REGISTRY, False, globals_text)

    assert (note in found) if note else found == ""
    assert len(found) <= 90  # one line of the table
    assert st.kolla_note(docker_host(files=files), st.BOTH, REGISTRY, False, globals_text) == found
    assert st.kolla_note(docker_host(files=files), st.DEPLOY, REGISTRY, False, globals_text) == ""


def test_kolla_note_has_nothing_to_say_of_trust_in_a_tls_registry():
    assert st.kolla_note(docker_host(files=TRUSTING), st.TARGET, REGISTRY, True, None) == ""


def test_kolla_notes_read_globals_yml_from_the_deployment_host_row():
    deploy = docker_host(container=container(), files={**TRUSTING, GLOBALS_PATH: MATCHING_GLOBALS})
    facts_of = {"deploy1": deploy, "node1": docker_host(files=TRUSTING), "node2": docker_host(files=FLAGS)}
    rows = [
        st.host_status(Host(name, "192.0.2.1"), role, facts_of[name], REGISTRY, CATALOG)
        for name, role in (("deploy1", st.DEPLOY), ("node1", st.TARGET), ("node2", st.TARGET))
    ] + [st.unreachable_status(Host("node3", "192.0.2.13"), st.TARGET, "refused")]

    st.with_kolla_notes(rows, facts_of, REGISTRY, False, GLOBALS_PATH)

    flags = "kolla's insecure-registries + these flags stop dockerd"
    assert [row.kolla.split(":")[0] for row in rows] == ["", "", flags, ""]
    table = st.status_table(rows, REGISTRY).splitlines()
    assert table[1].endswith("after kolla bootstrap-servers") and len(table) == 7  # a line per host
    assert "bootstrap-servers" not in st.status_table(rows[:2], REGISTRY)
    assert json.loads(status_json(rows))["hosts"][2]["kolla"] == rows[2].kolla


@pytest.mark.parametrize(
    "text, listed",
    [
        (None, None),
        ("", ""),
        ("docker_registry: reg:4000\n", ""),
        ("docker_registry: reg:4000\ndocker_registry_insecure: true\n", "reg:4000"),
        ("docker_registry: reg:4000\ndocker_registry_insecure: 'yes'\n", "reg:4000"),
        ("docker_registry_insecure: no\n", ""),
        ("- not a mapping\n", ""),
    ],
)
def test_the_registry_kolla_ansible_lists_as_insecure(text, listed):
    assert kolla_insecure_registry(text) == listed
