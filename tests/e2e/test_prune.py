"""prune-registry on the lab: two releases in deploy1's registry, the old one deleted and its space freed.

Two releases of one repository (a few MB of random bytes each, so that they
share no layer) and two of the operator's own ``ops/tool`` are pushed to the
lab's upstream and synced into deploy1's registry (nothing pushes into it: it
is read-only). The image list given to prune names the new release and every
tag already in the registry (other modules', an earlier run's), so only the old
release goes; it does not name ``ops/tool``, whose tags stay because prune
touches only the list's repositories. The prune runs while another run holds
the host's lock for a while: it waits for it. The registry serves throughout:
the deletes go through the writer, the collection is a one-off container.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from . import upstream
from .conftest import ensure_deployed, inventory_variant, registry_of

pytestmark = pytest.mark.e2e

REPOSITORY = "openstack.kolla/prune-e2e"
OPS_TOOL = "ops/tool"
PROBE = "kolla-registry/probe"
LOCK = "/var/lib/kolla-registry/lock"
LOCK_HELD = 15  # seconds another run holds the host's lock when the prune starts
RELEASED = "/tmp/kolla-e2e-lock-released"
LAYER_BYTES = 4_000_000
ACCEPT = "application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json"


def has_manifest(registry: str, tag: str, repository: str = REPOSITORY) -> bool:
    request = urllib.request.Request(
        f"http://{registry}/v2/{repository}/manifests/{tag}", method="HEAD", headers={"Accept": ACCEPT}
    )
    try:
        with urllib.request.urlopen(request, timeout=10):
            return True
    except urllib.error.HTTPError as error:
        if error.code == 404:
            return False
        raise


def every_tag(registry: str) -> list[str]:
    """Every ``repository:tag`` the registry holds, but the probe's."""
    with urllib.request.urlopen(f"http://{registry}/v2/_catalog?n=1000", timeout=10) as answer:
        repositories = json.load(answer)["repositories"]
    names = []
    for repository in repositories:
        if repository == PROBE:
            continue
        with urllib.request.urlopen(f"http://{registry}/v2/{repository}/tags/list", timeout=10) as answer:
            names += [f"{repository}:{tag}" for tag in json.load(answer).get("tags") or []]
    return names


def volume_bytes(hosts) -> int:
    mount = hosts.run("deploy1", "docker volume inspect -f '{{.Mountpoint}}' registry")
    return int(hosts.run("deploy1", f"du -sb {mount} | cut -f1"))


def registry_container(hosts) -> str:
    """The registry container's id and environment: what a recreate or read-only mode changes."""
    return hosts.run("deploy1", "docker inspect -f '{{.Id}} {{json .Config.Env}}' registry")


def created(seconds: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


def images_file(folder: Path, names: list[str], tag: str) -> Path:
    path = folder / f"images-{len(names)}.yaml"
    path.write_text(yaml.safe_dump({"images": {"tag": tag, "names": names}}))
    return path


@dataclass(frozen=True)
class Releases:
    """The registry, the old and new release's tags, and the image lists and inventory the tests use."""

    registry: str
    old: str
    new: str
    keep: Path  # the new release and every other tag in the registry: only the old release goes
    only_new: Path
    inventory: Path  # node1 only


@pytest.fixture(scope="module")
def releases(lab, fab, hosts, tmp_path_factory):
    """deploy1's registry (deletable) with an old and a new release; the image lists that keep the new."""
    ensure_deployed(fab)
    registry = registry_of(hosts)
    # Every tag already there is in the list (so that nothing of other modules', nor an earlier run's
    # release, could go whatever prune did), but for the operator's own ops/tool: only prune's scope
    # keeps its tags.
    others = [name for name in every_tag(registry) if not name.startswith(f"{OPS_TOOL}:")]
    old, new = time.strftime("prune-%Y%m%d%H%M%S-old"), time.strftime("prune-%Y%m%d%H%M%S-new")
    now = time.time()
    upstream.start()
    # Created one second apart at least: the new one is the newest.
    upstream.release(REPOSITORY, old, LAYER_BYTES, created(now - 2))
    upstream.release(REPOSITORY, new, LAYER_BYTES, created(now))
    for seconds, tool in ((now - 2, "v1"), (now, "v2")):
        upstream.release(OPS_TOOL, tool, LAYER_BYTES, created(seconds))
    folder = tmp_path_factory.mktemp("prune")
    names = [f"{REPOSITORY}:{old}", f"{REPOSITORY}:{new}", f"{OPS_TOOL}:v1", f"{OPS_TOOL}:v2"]
    synced = fab("sync-images", "--images", str(upstream.images_file(folder, names, new, "releases.yaml")))
    assert synced.code == 0, synced.output
    keep = images_file(folder, [*others, f"{REPOSITORY}:{new}"], new)
    only_new = images_file(folder, [f"{REPOSITORY}:{new}"], new)
    inventory = inventory_variant(Path(lab.inventory), folder, targets=["node1"])
    return Releases(registry, old, new, keep, only_new, inventory)


@pytest.fixture(scope="module")
def checked(fab, hosts, releases):
    """A --check run, with what it must not have changed around it."""
    before = (registry_container(hosts), volume_bytes(hosts))
    result = fab("prune-registry", "--check", "--keep", "0", "--images", str(releases.keep))
    return result, before, (registry_container(hosts), volume_bytes(hosts))


@pytest.fixture(scope="module")
def pruned(fab, hosts, releases, checked):
    """The prune, started while another run holds deploy1's lock for LOCK_HELD seconds."""
    before = volume_bytes(hosts)
    hosts.run(
        "deploy1",
        f"rm -f {RELEASED}; setsid nohup flock {LOCK} sh -c 'sleep {LOCK_HELD}; date +%s > {RELEASED}' "
        ">/dev/null 2>&1 < /dev/null &",
    )
    time.sleep(1)
    result = fab("prune-registry", "--keep", "0", "--images", str(releases.keep))
    return result, before, volume_bytes(hosts)


def test_check_lists_the_old_release_and_changes_nothing(checked, releases):
    registry, old, new = releases.registry, releases.old, releases.new
    result, before, after = checked

    assert result.code == 0, result.output
    assert "REGISTRY (nothing was deleted)" in result.output
    row = next(line for line in result.output.splitlines() if line.startswith(REPOSITORY))
    assert old in row and "to delete" in row
    assert f"{new} (current)" in result.output  # in the kept column (wrapped when earlier runs' releases stay)
    assert "deploy1 | prune-registry | CHANGED | " in result.output
    assert "1 tags to delete (1 manifests), about 4.0 MB to free" in result.output  # the random layer
    assert after == before  # the same container (no read-only recreate), the same bytes
    assert has_manifest(registry, old) and has_manifest(registry, new)


def test_check_shows_the_repository_outside_the_list_left_alone_and_what_all_repositories_would_delete(checked):
    result, _, _ = checked

    row = next(line for line in result.output.splitlines() if line.startswith(OPS_TOOL))
    assert row.split()[1:3] == ["v2,", "v1"] and "left alone" in row
    assert "not in the image list; --all-repositories would delete v2," in row
    line = next(line for line in result.output.splitlines() if line.startswith("deploy1 | prune-registry | CHANGED"))
    assert line.endswith("1 repositories not in the image list left alone (--all-repositories would delete 2 tags there)")


def test_prune_deletes_the_old_release_and_the_volume_shrinks(pruned, checked, releases, hosts):
    registry, old, new = releases.registry, releases.old, releases.new
    result, before, after = pruned

    assert result.code == 0, result.output
    assert "deploy1 | prune-registry | CHANGED | " in result.output
    assert "1 tags deleted (1 manifests); freed " in result.output
    assert before - after >= LAYER_BYTES * 0.9
    assert not has_manifest(registry, old) and has_manifest(registry, new)
    # The registry nodes reach was never touched: the same container, read-only, no deletes of its own.
    environment = registry_container(hosts)
    assert environment == checked[1][0]
    assert 'REGISTRY_STORAGE_MAINTENANCE_READONLY={\\"enabled\\":true}' in environment
    assert "REGISTRY_STORAGE_DELETE_ENABLED" not in environment
    # The writer the deletes went through is gone, and its socket.
    assert hosts.run("deploy1", "docker ps -aq --filter name=registry-writer") == ""
    assert hosts.run("deploy1", "test -e /run/kolla-registry/registry.sock && echo left || echo gone") == "gone"


def test_prune_leaves_the_operator_s_own_repository_alone(pruned, releases):
    result, _, _ = pruned

    assert result.code == 0, result.output
    assert has_manifest(releases.registry, "v1", OPS_TOOL) and has_manifest(releases.registry, "v2", OPS_TOOL)
    row = next(line for line in result.output.splitlines() if line.startswith(OPS_TOOL))
    assert "left alone" in row


def test_prune_waited_for_the_host_s_lock_before_changing_anything(pruned, hosts):
    result, _, _ = pruned

    assert result.code == 0, result.output
    released = int(hosts.run("deploy1", f"cat {RELEASED}"))
    # The writer the deletes went through started after the other run let go of the lock.
    started = hosts.run(
        "deploy1",
        f"docker events --since {released - LOCK_HELD - 60} --until $(date +%s) --filter container=registry-writer "
        "--filter event=start --format '{{.Time}}'",
    ).split()
    assert started and int(started[-1]) >= released


def test_after_a_prune_the_registry_is_as_deploy_host_left_it_and_verify_pushes_through_the_writer(pruned, fab, hosts):
    again = fab("deploy-host")

    assert again.code == 0 and "| create-registry | OK |" in again.output, again.output
    verified = fab("verify-registry")
    assert verified.code == 0, verified.output
    assert "kolla-registry/probe:latest through the writer" in verified.output
    assert (
        hosts.run("deploy1", "test -e /var/lib/kolla-registry/gc-pending && echo left || echo gone") == "gone"
    )


def test_a_target_still_pulls_the_kept_release(pruned, fab, hosts, releases):
    assert fab("configure-targets", inventory=releases.inventory).code == 0
    try:
        result = fab("pull-images", "--images", str(releases.only_new), inventory=releases.inventory)

        assert result.code == 0, result.output
        assert "node1 | pull-images | CHANGED | pulled 1; holds 1/1" in result.output
    finally:
        image = f"{releases.registry}/{REPOSITORY}:{releases.new}"
        hosts.run("node1", f"docker rmi {image} || podman rmi {image}", check=False)


def test_a_second_prune_deletes_nothing_and_recreates_nothing(pruned, fab, hosts, releases):
    before = registry_container(hosts)

    again = fab("prune-registry", "--keep", "0", "--images", str(releases.keep))

    assert again.code == 0, again.output
    assert "deploy1 | prune-registry | OK | nothing to delete: " in again.output
    assert registry_container(hosts) == before
