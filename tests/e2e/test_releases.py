"""Releases on the lab: release A synced with snapshot tags, the upstream's tag moved to new images, release
B synced; the cloud pinned to B (nodes pull B), rolled back to A (nodes pull A's digests again), and a
prune that keeps both deletes neither.

The upstream is a registry:2 container on the lab network (10.77.0.8) with two images of repositories of
their own (prune touches only the image list's), made by ``docker import``; its tag is new on every run,
and pushed again with other content to play quay.io overwriting a published tag.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from .conftest import ensure_deployed, inventory_variant, registry_of
from .test_kolla_globals import read, write
from .test_sync_images import free_loopback_port, head_digest, wait_for

pytestmark = pytest.mark.e2e

CONTAINER, IP = "lab-release-upstream", "10.77.0.8"
UPSTREAM = f"{IP}:5000"
NAMESPACE = "openstack.kolla"
SERVICES = ("release-keystone", "release-nova-compute")
GLOBALS = "/etc/kolla/globals.yml"
PIN = "/etc/kolla/globals.d/zz-kolla-registry-release.yml"
STAMP = time.strftime("%Y%m%d%H%M%S")
TAG, A, B = f"rel-{STAMP}", f"{STAMP}-a", f"{STAMP}-b"


class Upstream:
    """The lab's quay.io: ``publish(n)`` pushes the n-th build of every image under the one tag."""

    def __init__(self, lab, port: int, folder: Path) -> None:
        self.lab, self.port, self.folder = lab, port, folder
        self.pushed: list[str] = []

    def publish(self, build: int) -> dict[str, str]:
        """Each image's upstream digest after the push."""
        for service in SERVICES:
            content = self.folder / f"{service}-{build}"
            content.mkdir()
            (content / "build").write_text(f"{service} build {build} {STAMP}\n")
            tarball = self.folder / f"{service}-{build}.tar"
            subprocess.run(["tar", "-C", str(content), "-cf", str(tarball), "."], check=True)
            ref = f"127.0.0.1:{self.port}/{NAMESPACE}/{service}:{TAG}"
            with tarball.open("rb") as handle:
                self.lab.docker("import", "-", ref, stdin=handle.fileno())
            self.lab.docker("push", ref)
            self.pushed.append(ref)
        return {service: head_digest(UPSTREAM, f"{NAMESPACE}/{service}", TAG) for service in SERVICES}


@pytest.fixture(scope="module")
def upstream(lab, tmp_path_factory):
    port = free_loopback_port()
    lab.docker("rm", "-f", "-v", CONTAINER, check=False)
    lab.docker("run", "-d", "--name", CONTAINER, "--network", "kolla-lab", "--ip", IP,
               "-p", f"127.0.0.1:{port}:5000", "registry:2")  # fmt: skip
    found = Upstream(lab, port, tmp_path_factory.mktemp("release-upstream"))
    try:
        wait_for(UPSTREAM)
        yield found
    finally:
        lab.docker("rm", "-f", "-v", CONTAINER, check=False)
        lab.docker("rmi", *found.pushed, check=False)


@pytest.fixture(scope="module")
def cloud(lab, fab, hosts, upstream, tmp_path_factory):
    """The inventory (node1, the upstream's images, releases A and B kept); deploy1's globals.yml as it was after."""
    ensure_deployed(fab)
    folder = tmp_path_factory.mktemp("releases")
    section = {"registry": UPSTREAM, "insecure": True, "tag": TAG, "services": list(SERVICES), "keep_releases": [A, B]}
    inventory = inventory_variant(Path(lab.inventory), folder, targets=["node1"], images=section)
    before = read(hosts, GLOBALS)
    assert fab("configure-targets", inventory=inventory).code == 0
    try:
        yield inventory
    finally:
        hosts.run("deploy1", f"rm -f {PIN}; rmdir /etc/kolla/globals.d 2>/dev/null || true")
        if before is None:
            hosts.run("deploy1", f"rm -f {GLOBALS}")
        else:
            write(hosts, GLOBALS, before)
        registry = registry_of(hosts)
        refs = " ".join(f"{registry}/{NAMESPACE}/{s}:{t}" for s in SERVICES for t in (f"{TAG}-{A}", f"{TAG}-{B}"))
        hosts.run("node1", f"docker rmi {refs} >/dev/null 2>&1 || true")


def digests_in(registry: str, tag: str) -> dict[str, str | None]:
    return {service: head_digest(registry, f"{NAMESPACE}/{service}", tag) for service in SERVICES}


def node_digests(hosts, tag: str) -> dict[str, str]:
    """The repository digest node1 holds each image at ``tag`` under."""
    registry = registry_of(hosts)
    found = {}
    for service in SERVICES:
        listed = json.loads(hosts.run("node1", f"docker image inspect -f '{{{{json .RepoDigests}}}}' {registry}/{NAMESPACE}/{service}:{tag}"))
        found[service] = next(ref.split("@")[1] for ref in listed if ref.startswith(f"{registry}/{NAMESPACE}/{service}@"))
    return found


@pytest.fixture(scope="module")
def releases(fab, hosts, cloud, upstream):
    """Release A synced, the upstream's tag moved, release B synced: each release's digests and lock."""
    lock = cloud.parent / "kolla-images.lock.yaml"
    built_a = upstream.publish(1)
    synced_a = fab("sync-images", "--release", A, inventory=cloud)
    assert synced_a.code == 0, synced_a.output
    lock_a = yaml.safe_load(lock.read_text())
    built_b = upstream.publish(2)
    synced_b = fab("sync-images", "--release", B, inventory=cloud)
    assert synced_b.code == 0, synced_b.output
    return {"A": built_a, "B": built_b, "lock_a": lock_a, "lock_b": yaml.safe_load(lock.read_text()),
            "synced_a": synced_a, "synced_b": synced_b}  # fmt: skip


def test_each_release_is_tagged_and_a_later_release_leaves_the_earlier_as_it_was(releases, hosts):
    registry = registry_of(hosts)

    assert releases["A"] != releases["B"]  # the upstream's tag moved
    assert "sync-images: 2 images: 2 copied" in releases["synced_a"].output
    assert digests_in(registry, f"{TAG}-{A}") == releases["A"]
    assert digests_in(registry, f"{TAG}-{B}") == digests_in(registry, TAG) == releases["B"]
    assert {e["image"].split("/")[-1].split(":")[0]: e["digest"] for e in releases["lock_a"]["images"]} == releases["A"]
    assert releases["lock_a"]["release"] == A and releases["lock_b"]["release"] == B
    assert all(e["snapshot"] == f"{TAG}-{B}" for e in releases["lock_b"]["images"])


def test_a_sync_that_would_move_a_release_tag_is_refused(fab, hosts, releases, cloud):
    again = fab("sync-images", "--release", A, inventory=cloud)

    assert again.code == 1, again.output
    assert f"release {A}: refused, a release's snapshot tag is never moved: " in again.output
    assert digests_in(registry_of(hosts), f"{TAG}-{A}") == releases["A"]


def test_a_release_the_registry_lacks_is_not_pinned(fab, hosts, releases, cloud):
    refused = fab("kolla-globals", "--release", f"{STAMP}-never", inventory=cloud)

    assert refused.code == 1, refused.output
    assert "2 of 2 images are not in the registry at their snapshot tags" in refused.output
    assert read(hosts, PIN) is None


@pytest.fixture(scope="module")
def pinned_to_b(fab, hosts, releases, cloud):
    """The cloud pinned to release B, and its nodes' pull at it: where a rollback starts from, whichever
    test runs first (or alone)."""
    pinned = fab("kolla-globals", "--release", B, inventory=cloud)
    assert pinned.code == 0, pinned.output
    return fab("pull-images", inventory=cloud)


def test_pinned_to_b_the_nodes_pull_b(fab, hosts, releases, cloud, pinned_to_b):
    pulled = pinned_to_b
    assert yaml.safe_load(read(hosts, PIN))["openstack_tag_suffix"] == f"-{B}"

    assert pulled.code == 0, pulled.output
    assert f"at release {B}" in pulled.output and "node1 | pull-images | CHANGED | pulled 2; holds 2/2" in pulled.output
    assert node_digests(hosts, f"{TAG}-{B}") == releases["B"]
    shown = fab("status", "--json", inventory=cloud)
    rows = {row["host"]: row for row in json.loads(shown.output[shown.output.index("{"):])["hosts"]}
    assert rows["node1"]["release"] == f"{B} 2/2 (pinned)"


def test_rolled_back_to_a_the_nodes_pull_a_s_digests_again(fab, hosts, releases, cloud, pinned_to_b):
    back = fab("kolla-globals", "--release", A, inventory=cloud)
    assert back.code == 0, back.output
    assert f"release {B} -> {A}" in back.output

    pulled = fab("pull-images", inventory=cloud)

    assert pulled.code == 0, pulled.output
    assert node_digests(hosts, f"{TAG}-{A}") == releases["A"] != releases["B"]
    shown = fab("status", "--json", inventory=cloud)
    rows = {row["host"]: row for row in json.loads(shown.output[shown.output.index("{"):])["hosts"]}
    assert rows["node1"]["release"] == f"{A} 2/2 (pinned), {B} 2/2"


def pruned_tags(output: str) -> dict[str, dict]:
    """prune-registry --json: each repository of the list's tags kept (and why) and deleted."""
    document = json.loads(output[output.index("{") :])
    [row] = [row for row in document["hosts"] if row.get("repositories")]
    return {repo["name"].split("/")[-1]: repo for repo in row["repositories"] if repo["name"].split("/")[-1] in SERVICES}


def test_prune_keeps_both_releases_says_why_and_without_them_would_delete_a(fab, hosts, releases, cloud, tmp_path):
    unkept = tmp_path / "images.yaml"
    unkept.write_text(yaml.safe_dump({"images": {"registry": UPSTREAM, "insecure": True, "tag": TAG, "services": list(SERVICES)}}))
    would = fab("prune-registry", "--keep", "0", "--check", "--json", "--images", str(unkept), inventory=cloud)
    assert would.code == 0, would.output
    for repo in pruned_tags(would.output).values():
        assert f"{TAG}-{A}" in repo["deleted"]  # no release kept: A's image would go (B's is the current one)

    pruned = fab("prune-registry", "--keep", "0", "--json", inventory=cloud)

    assert pruned.code == 0, pruned.output
    for repo in pruned_tags(pruned.output).values():
        why = {kept["tag"]: kept["why"] for kept in repo["kept"]}
        assert why[f"{TAG}-{A}"] == f"release {A}" and why[f"{TAG}-{B}"] == f"release {B}" and why[TAG] == "current"
        assert not {f"{TAG}-{A}", f"{TAG}-{B}", TAG} & set(repo["deleted"])
    registry = registry_of(hosts)
    assert digests_in(registry, f"{TAG}-{A}") == releases["A"]
    assert digests_in(registry, f"{TAG}-{B}") == digests_in(registry, TAG) == releases["B"]
