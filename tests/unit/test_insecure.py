"""A TLS registry never silently downgraded: every form of insecure entry is found, this tool's removed,
any other one fails the node's row by name and is warned of in status."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from fabfile.actions.status import Status
from fabfile.actions.targets import ConfigureTargets
from fabfile.engines.docker import config as dc
from fabfile.engines.docker import trust
from fabfile.engines.docker.facts import REGISTRY_CONFIG, read_registry_config
from fabfile.engines.docker.insecure import insecure_entries
from fabfile.engines.docker.paths import DAEMON_JSON, DEFAULT_DOCKER, ca_path
from fabfile.engines.podman import registries
from fabfile.engines.podman.paths import DROPIN, REGISTRIES_DIR
from fabfile.facts.base import Texts
from fabfile.model.facts import HostFacts
from fabfile.model.inventory import Host
from fabfile.model.outcome import FAILED
from fabfile.model.paths import PENDING
from fabfile.model.plan import RELOAD, RESTART
from fabfile.registry import status as st

from .factories import (
    REGISTRY,
    REGISTRY_IP,
    changed,
    docker_host,
    make_ctx,
    podman_dropin,
    podman_host,
    run_on_host,
)

CA = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
SECURE = {"tls": "self-signed", "auth": "htpasswd"}
CA_FILE = {ca_path(REGISTRY): CA}
NODE = Host("node1", "192.0.2.11")
# dockerd's RegistryConfig by default: loopback only.
DEFAULT_VIEW = {
    "InsecureRegistryCIDRs": ["::1/128", "127.0.0.0/8"],
    "IndexConfigs": {"docker.io": {"Name": "docker.io", "Mirrors": [], "Secure": True, "Official": True}},
}


def ctx_secure(password: str = ""):
    return replace(make_ctx(SECURE), ca=CA, password=password)


def daemon(*entries) -> dict[str, str]:
    return {DAEMON_JSON: json.dumps({"insecure-registries": list(entries)})}


def view(*cidrs: str, insecure: tuple[str, ...] = ()) -> dict:
    """dockerd's RegistryConfig with these CIDRs besides its defaults, and these registries listed insecure."""
    index = dict(DEFAULT_VIEW["IndexConfigs"])
    index.update({name: {"Name": name, "Mirrors": [], "Secure": False, "Official": False} for name in insecure})
    return {"InsecureRegistryCIDRs": [*cidrs, *DEFAULT_VIEW["InsecureRegistryCIDRs"]], "IndexConfigs": index}


def node(files=None, dockerd=None, **changes) -> HostFacts:
    facts = docker_host(files={**CA_FILE, **(files or {})}, registry_tls="401", **changes)
    facts.engine("docker").registry_config = dockerd if dockerd is not None else DEFAULT_VIEW
    return facts


@pytest.mark.parametrize(
    "entry",
    ["192.0.0.0/8", "192.0.2.0/24", "192.0.2.10/32", "http://192.0.2.0/24"],
)
def test_a_cidr_that_covers_the_registry_fails_the_node_naming_it(entry):
    plan = trust.trust_registry(node(daemon("other:5000", entry)), ctx_secure())

    assert plan.error == (
        f"{entry} in {DAEMON_JSON} insecure-registries makes dockerd treat the TLS registry {REGISTRY} as insecure "
        f"(no certificate check; plain HTTP fallback, login included): remove it there, or narrow it to leave "
        f"{REGISTRY_IP} out"
    )


def test_a_cidr_that_leaves_the_registry_out_is_not_ours_to_judge():
    plan = trust.trust_registry(node(daemon("10.0.0.0/8", "other:5000")), ctx_secure())
    assert plan.error is None and plan.notes == [f"{REGISTRY} trusted through its CA ({ca_path(REGISTRY)})"]


@pytest.mark.parametrize("entry", [REGISTRY, f"http://{REGISTRY}", f"https://{REGISTRY}/"])
def test_the_entries_naming_this_registry_are_ours_and_go_with_a_reload(entry):
    plan = trust.trust_registry(node(daemon("other:5000", entry, "10.0.0.0/8")), ctx_secure())

    [change] = plan.files
    assert json.loads(change.after) == {"insecure-registries": ["other:5000", "10.0.0.0/8"]}
    assert plan.handler == RELOAD and plan.error is None


def test_our_docker_opts_flag_goes_only_with_repair_and_a_restart():
    opts = {DEFAULT_DOCKER: f'DOCKER_OPTS="--dns 8.8.8.8 --insecure-registry {REGISTRY} --insecure-registry o:5000"\n'}

    refused = trust.trust_registry(node(opts), ctx_secure())
    assert refused.error == (
        f"{REGISTRY} is an --insecure-registry flag of dockerd in {DEFAULT_DOCKER}: certificates are not checked "
        "and a login may go over plain HTTP; re-run with --repair to remove it (restarts Docker)"
    )

    repaired = trust.trust_registry(node(opts), replace(ctx_secure(), modes=replace(ctx_secure().modes, repair=True)))
    [change] = repaired.files
    assert dc.docker_opts(change.after) == ["--dns", "8.8.8.8", "--insecure-registry", "o:5000"]
    assert repaired.handler == RESTART


def test_dockerds_own_view_counts_a_cidr_no_file_gives_it():
    plan = trust.trust_registry(node(dockerd=view("192.0.2.0/24")), ctx_secure())
    assert plan.error.startswith(
        "192.0.2.0/24 in dockerd's running config (docker info), in no file this tool reads makes dockerd treat"
    )


def test_a_registry_on_loopback_is_always_insecure_to_dockerd():
    ctx = replace(make_ctx(SECURE, address="127.0.0.1"), ca=CA)
    facts = node({ca_path(ctx.registry): CA})
    plan = trust.trust_registry(facts, ctx)
    assert plan.error.startswith("127.0.0.0/8 in dockerd's built-in insecure range makes dockerd treat")
    assert plan.error.endswith("set registry.address to a non-loopback address")


def test_dockerd_listing_the_registry_while_a_reload_is_pending_waits_for_the_handler():
    listed = view(insecure=(REGISTRY,))
    assert insecure_entries(node(dockerd=listed), REGISTRY)[0].where.startswith("dockerd's running config")
    assert insecure_entries(node({PENDING: f"reload {DAEMON_JSON} -\n"}, dockerd=listed), REGISTRY) == []


def test_dockerd_listing_the_registry_as_a_file_does_is_named_once():
    facts = node(daemon("192.0.2.0/24"), dockerd=view("192.0.2.0/24"))
    assert [str(entry) for entry in insecure_entries(facts, REGISTRY)] == [f"192.0.2.0/24 ({DAEMON_JSON} insecure-registries)"]


def test_dockerds_view_is_read_from_its_info_or_its_registry_config():
    for text in (json.dumps({"ServerVersion": "26.1.5", "RegistryConfig": DEFAULT_VIEW}), json.dumps(DEFAULT_VIEW)):
        facts = HostFacts()
        REGISTRY_CONFIG.parse(Texts({REGISTRY_CONFIG.name: text}), facts)
        assert facts.engine("docker").registry_config == DEFAULT_VIEW
    read_registry_config(facts, "not json")
    assert facts.engine("docker").registry_config == {}


def test_a_cidr_fails_the_nodes_row_through_the_engine_and_nothing_is_sent_with_the_login():
    run = run_on_host(ConfigureTargets(), node(daemon("192.0.0.0/8")), ctx_secure(password="s3cret"))

    [row] = run.outcomes
    assert row.status == FAILED and "192.0.0.0/8 in /etc/docker/daemon.json insecure-registries" in row.message
    assert run.scripts == []


# --- podman ----------------------------------------------------------------------------------------


def test_podmans_entries_are_found_ours_and_theirs():
    other = f"{REGISTRIES_DIR}/60-site.conf"
    facts = podman_host(files={DROPIN: podman_dropin(REGISTRY, True), other: f'[[registry]]\nlocation = "{REGISTRY}/openstack.kolla"\ninsecure = true\n'})

    found = registries.insecure_entries(facts, REGISTRY)

    assert [(entry.entry, entry.where, entry.ours) for entry in found] == [
        (f"{REGISTRY}/openstack.kolla", other, False),
        (REGISTRY, DROPIN, True),
    ]


def test_a_podman_node_with_the_ca_in_place_whose_tls_does_not_verify_fails_and_stays_insecure():
    facts = podman_host(
        files={DROPIN: podman_dropin(REGISTRY, True), "/etc/containers/certs.d/" + REGISTRY + "/ca.crt": CA},
        registry_tls="curl: (60) SSL certificate problem",
    )
    plan = registries.trust_podman(facts, ctx_secure())
    assert plan.error.startswith(f"TLS to {REGISTRY} does not verify from here with the registry's CA")
    assert plan.files == []


# --- status ----------------------------------------------------------------------------------------


def test_status_warns_of_a_tls_registry_a_node_treats_as_insecure():
    ctx = ctx_secure()
    facts = node(daemon("192.0.0.0/8"))

    row = st.host_status(NODE, st.TARGET, facts, REGISTRY, {}, secure=True)

    assert row.trusted is False and row.insecure == [f"192.0.0.0/8 ({DAEMON_JSON} insecure-registries)"]
    assert row.tls.startswith(f"NOT checked: treated as insecure by 192.0.0.0/8 ({DAEMON_JSON} insecure-registries)")
    action = Status(ctx.inventory, "/etc/kolla/globals.yml", lambda: ctx.registry_address)
    [outcome] = run_on_host(action, facts, ctx, NODE).outcomes
    assert "NOT checked" in st.status_table([st.HostStatus(**outcome.data)], REGISTRY)


def test_status_reads_dockerds_view_of_a_tls_registry():
    shells = [section.shell for section in Status(make_ctx(SECURE).inventory, "/g", lambda: "").sections(ctx_secure())]
    assert REGISTRY_CONFIG.shell in shells


def test_status_of_a_podman_node_still_insecure_warns():
    facts = changed(podman_host(files={DROPIN: podman_dropin(REGISTRY, True)}), registry_tls="200")
    row = st.host_status(NODE, st.TARGET, facts, REGISTRY, {}, secure=True)
    assert row.tls.startswith(f"NOT checked: treated as insecure by {REGISTRY} ({DROPIN})")
