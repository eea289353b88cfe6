"""The deployment's own images in every task: the inventory's kolla-ansible settings, each host's set,
the hosts from kolla-ansible's inventory, the cache, and check-images' verdicts and shell."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from fabfile.actions.check import CheckImages
from fabfile.engines.docker.resolve import resolve_section as docker_resolve
from fabfile.facts import base as facts_base
from fabfile.images import check_plan as check
from fabfile.images.model import Image, Synced
from fabfile.images.sync_report import table
from fabfile.images.wanted import every_host_wants, per_host
from fabfile.inventory import load
from fabfile.kolla import cache
from fabfile.kolla.imageset import KollaImagesError, KollaImageSet, PulledImage, kolla_targets, wanted
from fabfile.model.context import Modes
from fabfile.model.inventory import Host, InventoryError
from fabfile.model.outcome import FAILED, OK

from .factories import REGISTRY, docker_host, make_ctx, run_on_host

KEYSTONE, NOVA, COMPUTE = (Image(f"openstack.kolla/{name}", "2026.2-rocky-10") for name in ("keystone", "nova-api", "nova-compute"))


def kolla_set(**hosts) -> KollaImageSet:
    return KollaImageSet(
        "23.0.0",
        "quay.io",
        "openstack.kolla",
        {name: tuple(PulledImage("quay.io", image) for image in images) for name, images in hosts.items()},
        {"ctl1": {"address": "192.0.2.21", "user": "operator"}, "cmp1": {"address": "192.0.2.31", "port": "2222"},
         "localhost": {"connection": "local"}},
    )


# --- the inventory's settings --------------------------------------------------------------------


def inventory_file(tmp_path: Path, images: str, targets: str = "targets: [{name: node1, address: 192.0.2.11}]") -> Path:
    (tmp_path / "multinode").write_text("[control]\nctl1\n")
    (tmp_path / "kolla").mkdir(exist_ok=True)
    path = tmp_path / "hosts.yaml"
    path.write_text(f"deploy_host: {{name: deploy1, address: 192.0.2.10}}\n{targets}\nimages:\n{images}")
    return path


def test_images_from_kolla_ansible_name_its_inventory_and_config_dir(tmp_path):
    path = inventory_file(tmp_path, "  from: kolla-ansible\n  inventory: multinode\n  config_dir: kolla\n")

    source = load(path).images.kolla

    assert source.inventory == (str(tmp_path / "multinode"),) and source.config_dir == str(tmp_path / "kolla")
    assert source.virtualenv is None


@pytest.mark.parametrize(
    ("images", "targets", "problem"),
    [
        ("  from: kolla-ansible\n  config_dir: kolla\n", None, "images.inventory: missing: kolla-ansible's inventory"),
        ("  from: kolla-ansible\n  inventory: nowhere\n", None, "images.inventory: "),
        ("  from: kolla-ansible\n  inventory: multinode\n  tag: zed\n", None, "images.tag: not with images.from: kolla-ansible"),
        ("  from: kolla\n  inventory: multinode\n", None, "images.from: 'kolla' is not kolla-ansible"),
        ("  names: [a/b:1]\n  inventory: multinode\n", None, "images.inventory: only with images.from: kolla-ansible"),
        ("  names: [a/b:1]\n", "targets: kolla-ansible", "targets: kolla-ansible: needs images.from: kolla-ansible"),
    ],
)
def test_a_bad_kolla_ansible_setting_names_the_file_and_key(tmp_path, images, targets, problem):
    path = inventory_file(tmp_path, images, targets or "targets: []")

    with pytest.raises(InventoryError) as caught:
        load(path)

    assert str(caught.value).startswith(f"{path}: ") and problem in str(caught.value)


def test_targets_from_kolla_ansible_are_left_for_its_inventory(tmp_path):
    path = inventory_file(tmp_path, "  from: kolla-ansible\n  inventory: multinode\n  config_dir: kolla\n", "targets: kolla-ansible")

    inventory = load(path)

    assert inventory.kolla_targets and inventory.targets == ()


# --- each host's set ------------------------------------------------------------------------------


def test_a_list_is_every_hosts_and_kolla_ansibles_set_is_each_hosts_own():
    assert every_host_wants([KEYSTONE]).of(Host("any", "192.0.2.99")) == (KEYSTONE,)

    found = wanted(kolla_set(ctl1=[KEYSTONE, NOVA], cmp1=[COMPUTE], localhost=[]))

    assert found.images == (KEYSTONE, NOVA, COMPUTE) and found.source == "kolla-ansible 23.0.0"
    assert found.of(Host("ctl1", "10.0.0.1")) == (KEYSTONE, NOVA)
    # A target listed under another name is found by its address (ansible_host).
    assert found.of(Host("compute-a", "192.0.2.31")) == (COMPUTE,)
    assert not found.names_host(Host("stranger", "192.0.2.99")) and found.of(Host("stranger", "192.0.2.99")) == ()
    assert found.needed_by == {KEYSTONE: ("ctl1",), NOVA: ("ctl1",), COMPUTE: ("cmp1",)}


def test_an_image_name_no_script_should_carry_is_refused():
    bad = Image("openstack.kolla/nova;reboot", "1")
    with pytest.raises(KollaImagesError, match="host ctl1: .* is not an image reference"):
        wanted(kolla_set(ctl1=[bad]))


def test_the_sync_table_says_which_hosts_need_each_image():
    needed_by = per_host({f"cmp{i}": (COMPUTE,) for i in range(5)} | {"ctl1": (KEYSTONE,)}, {}, "kolla").needed_by
    shown = table([Synced(KEYSTONE, "present"), Synced(COMPUTE, "to copy")], needed_by=needed_by)

    assert "hosts" in shown.splitlines()[1]
    assert "ctl1" in shown and "5 hosts (cmp0, ...)" in shown


def test_targets_from_kolla_ansibles_inventory_are_its_hosts_that_pull():
    defaults = Host("", "", user="root", key="/srv/key", host_key_policy="strict")

    hosts = kolla_targets(kolla_set(ctl1=[KEYSTONE], cmp1=[COMPUTE], localhost=[KEYSTONE]), defaults)

    assert hosts == (
        Host("ctl1", "192.0.2.21", user="operator", key="/srv/key", host_key_policy="strict"),
        Host("cmp1", "192.0.2.31", port=2222, key="/srv/key", host_key_policy="strict"),
    )


@pytest.mark.parametrize(
    ("connection", "problem"),
    [
        ({"address": "192.0.2.21; reboot"}, "ansible_host '192.0.2.21; reboot' is not a host name or IP address"),
        ({"user": "op$(id)"}, "ansible_user 'op$(id)' is not a user name"),
        ({"port": "22x"}, "ansible_port '22x' is not a port"),
    ],
)
def test_a_host_value_this_tool_would_not_use_is_named(connection, problem):
    found = KollaImageSet("23.0.0", "", "", {"ctl1": (PulledImage("", KEYSTONE),)}, {"ctl1": connection})
    with pytest.raises(KollaImagesError, match=f"host ctl1: {problem.replace('$', '[$]').replace('(', '[(]').replace(')', '[)]')}"):
        kolla_targets(found, Host("", ""))


# --- the cache ------------------------------------------------------------------------------------


def test_the_set_is_computed_once_and_again_when_globals_yml_changes(tmp_path, monkeypatch):
    monkeypatch.setenv(cache.CACHE_ENV, str(tmp_path / "cache"))
    (tmp_path / "inventory").write_text("[control]\nctl1\n")
    (tmp_path / "kolla").mkdir()
    (tmp_path / "kolla" / "globals.yml").write_text("---\n")
    request = {"inventory": [str(tmp_path / "inventory")], "config_dir": str(tmp_path / "kolla")}
    computed: list[int] = []

    def compute() -> dict:
        computed.append(1)
        return {"hosts": {"ctl1": [f"quay.io/x/y:{len(computed)}"]}}

    first = cache.cached("/usr/bin/python3", request, compute)
    assert cache.cached("/usr/bin/python3", request, compute) == first and len(computed) == 1
    (tmp_path / "kolla" / "globals.yml").write_text('---\nenable_cinder: "yes"\n')
    assert cache.cached("/usr/bin/python3", request, compute) != first and len(computed) == 2
    assert oct((tmp_path / "cache" / "kolla-images").stat().st_mode)[-3:] == "700"


# --- check-images ---------------------------------------------------------------------------------

D1, D2, D3 = ("sha256:" + letter * 64 for letter in "123")


@pytest.mark.parametrize(
    ("code", "said", "registry", "upstream", "meaning"),
    [
        (200, D1, D1, "", check.OK),
        (200, D1, D1, D1, check.OK),
        (200, D1, D1, D2, check.STALE),
        (200, D2, D1, "", check.WRONG),
        (200, D1, "", "", check.WRONG),
        (500, "manifest unknown: manifest unknown", D1, "", check.MISSING),
        (404, "", D1, "", check.MISSING),
        (500, "Get https://r:4000/v2/: x509: certificate signed by unknown authority", D1, "", check.UNTRUSTED),
        (500, "http: server gave HTTP response to HTTPS client", D1, "", check.UNTRUSTED),
        (500, "unauthorized: authentication required", D1, "", check.UNAUTHORIZED),
        (401, "", D1, "", check.UNAUTHORIZED),
        (0, "no answer from the node", D1, "", check.BROKEN),
    ],
)
def test_what_a_resolution_means(code, said, registry, upstream, meaning):
    assert check.verdict(code, said, registry, upstream) == meaning


def resolved(*rows: tuple[Image, int, str]) -> dict:
    return {image.at(REGISTRY): (code, said) for image, code, said in rows}


def test_a_node_whose_images_resolve_with_the_registrys_digests_passes():
    facts = docker_host(docker_images={})
    facts.engine("docker").resolved = resolved((KEYSTONE, 200, D1), (NOVA, 200, D2))
    action = CheckImages(every_host_wants([KEYSTONE, NOVA]), {KEYSTONE: D1, NOVA: D2}, {KEYSTONE: D3})

    run = run_on_host(action, facts, make_ctx({"address": "192.0.2.10"}))

    [row] = run.outcomes
    assert (row.status, row.message) == (OK, "2 images resolve with the registry's digests; 1 older than upstream's (run fab sync-images)")
    assert not [s for s in run.scripts if not s.startswith(facts_base.PREAMBLE)]  # nothing but facts


def test_a_node_that_would_fail_kolla_ansible_pull_names_each_image_and_the_fix():
    facts = docker_host()
    facts.engine("docker").resolved = resolved(
        (KEYSTONE, 500, "manifest unknown: manifest unknown"),
        (NOVA, 500, "Get https://x/v2/: x509: certificate signed by unknown authority"),
        (COMPUTE, 200, D3),
    )
    action = CheckImages(every_host_wants([KEYSTONE, NOVA, COMPUTE]), {KEYSTONE: D1, NOVA: D2, COMPUTE: D1}, {})

    [row] = run_on_host(action, facts, make_ctx({"address": "192.0.2.10"})).outcomes

    assert row.status == FAILED
    assert row.message.startswith("not trusted: openstack.kolla/nova-api:2026.2-rocky-10 (this node does not trust")
    assert "missing: openstack.kolla/keystone:2026.2-rocky-10" in row.message
    assert "wrong digest: openstack.kolla/nova-compute:2026.2-rocky-10" in row.message
    assert row.message.endswith("run fab sync-images")
    assert row.data["images"]["missing"] == ["openstack.kolla/keystone:2026.2-rocky-10"]


FAKE_CURL = """#!/bin/sh
# Answers the docker socket's distribution endpoint; keeps the headers file it was given.
for arg; do case $arg in @*) cp "${arg#@}" "$LOG.header" ;; http://docker/*) url=$arg ;; esac; done
case $url in
  *keystone*) printf '{"Descriptor":{"mediaType":"m","digest":"%s","size":1},"Platforms":[]}\\n200' "$D1" ;;
  *) printf '{"message":"manifest unknown: manifest unknown"}\\n500' ;;
esac
"""


def test_dockers_resolution_runs_here_against_a_stand_in_socket_and_keeps_the_login_off_argv(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "curl").write_text(FAKE_CURL)
    (bin_dir / "curl").chmod(0o755)
    ctx = make_ctx({"address": "192.0.2.10", "tls": "self-signed", "auth": "htpasswd"})
    ctx = ctx.__class__(ctx.inventory, ctx.registry_address, Modes(), password="s3cret-Pa55")
    section = docker_resolve(ctx, [KEYSTONE.at(ctx.registry), NOVA.at(ctx.registry)])
    # The socket's test stands for dockerd answering; everything else runs as on a node.
    script = facts_base.script([section]).replace("[ -S /var/run/docker.sock ]", "true")
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "LOG": str(tmp_path / "log"), "D1": D1}

    done = subprocess.run(["sh", "-c", script], capture_output=True, text=True, env=env, timeout=30, check=True)

    found = facts_base.parse(done.stdout, [section]).engine("docker").resolved
    assert found == {KEYSTONE.at(ctx.registry): (200, D1), NOVA.at(ctx.registry): (500, "manifest unknown: manifest unknown")}
    header = (tmp_path / "log.header").read_text()
    assert header.startswith("X-Registry-Auth: ") and "s3cret-Pa55" not in script
    auth = json.loads(__import__("base64").urlsafe_b64decode(header.split(": ", 1)[1].strip()))
    assert auth == {"username": "kolla", "password": "s3cret-Pa55", "serveraddress": ctx.registry}
