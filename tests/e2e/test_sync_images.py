"""sync-images and pull-images on the lab: a second registry at 10.77.0.5 plays quay.io.

The upstream is a registry:2 container on the lab network, filled by the lab's
engine with tiny images made by ``docker import`` (pushed through a loopback
port, which Docker trusts without configuration). Nothing outside the lab is
contacted. Tags are new on every run, because deploy1's registry keeps what
earlier runs synced.
"""

from __future__ import annotations

import json
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from .conftest import ensure_deployed, inventory_variant

pytestmark = pytest.mark.e2e

UPSTREAM_CONTAINER = "lab-upstream"
UPSTREAM_IP = "10.77.0.5"
UPSTREAM = f"{UPSTREAM_IP}:5000"
NAMESPACE = "openstack.kolla"
SERVICES = ("keystone", "nova-api", "glance-api")
ACCEPT = (
    "application/vnd.docker.distribution.manifest.v2+json, "
    "application/vnd.docker.distribution.manifest.list.v2+json"
)


@dataclass(frozen=True)
class Upstream:
    """The lab's upstream: its tags, and the archive of the same images under a tag it lacks."""

    tag: str
    archive: Path

    @property
    def other_tag(self) -> str:
        """The same images again, for the run with an image missing upstream."""
        return f"{self.tag}-b"

    @property
    def archive_tag(self) -> str:
        """Only in the archive, never pushed upstream: a sync that finds them used the archive."""
        return f"{self.tag}-archive"


def head_digest(registry: str, repository: str, tag: str) -> str | None:
    """The manifest digest a registry gives for ``repository:tag`` (HEAD, as sync-images asks)."""
    request = urllib.request.Request(
        f"http://{registry}/v2/{repository}/manifests/{tag}", method="HEAD", headers={"Accept": ACCEPT}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.headers["Docker-Content-Digest"]
    except urllib.error.HTTPError as error:
        if error.code == 404:
            return None
        raise


def config_digest(registry: str, repository: str, tag: str) -> str:
    """The config digest of ``repository:tag``: the image ID, whatever its layers' compression."""
    request = urllib.request.Request(
        f"http://{registry}/v2/{repository}/manifests/{tag}", headers={"Accept": ACCEPT}
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        return json.load(answer)["config"]["digest"]


def catalog(registry: str) -> list[str]:
    with urllib.request.urlopen(f"http://{registry}/v2/_catalog?n=1000", timeout=10) as answer:
        return json.load(answer)["repositories"]


def wait_for(registry: str) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            catalog(registry)
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def free_loopback_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def registry_of(hosts) -> str:
    return f"{hosts.inventory.deploy_host.address}:{hosts.inventory.registry.port}"


@contextmanager
def upstream_registry(lab, container: str, ip: str) -> Iterator[int]:
    """A registry:2 named ``container`` at ``ip``:5000 on the lab network, published on a free loopback port
    (yielded: Docker pushes there without configuration); removed afterwards."""
    port = free_loopback_port()
    lab.docker("rm", "-f", "-v", container, check=False)
    lab.docker("run", "-d", "--name", container, "--network", "kolla-lab", "--ip", ip,
               "-p", f"127.0.0.1:{port}:5000", "registry:2")  # fmt: skip
    try:
        wait_for(f"{ip}:5000")
        yield port
    finally:
        lab.docker("rm", "-f", "-v", container, check=False)


def import_service(lab, built: Path, service: str, tag: str, ref: str, *changes: str) -> None:
    """A one-file image of ``service`` (its name and ``tag`` inside) in the lab's Docker as ``ref``;
    ``changes`` are ``docker import`` options (``-c LABEL ...``)."""
    content = built / service
    content.mkdir()
    (content / "service").write_text(f"{service} {tag}\n")
    tarball = built / f"{service}.tar"
    subprocess.run(["tar", "-C", str(content), "-cf", str(tarball), "."], check=True)
    with tarball.open("rb") as handle:
        lab.docker("import", *changes, "-", ref, stdin=handle.fileno())


@pytest.fixture(scope="module")
def upstream(lab, tmp_path_factory):
    """The upstream registry with three images under two tags, and a docker save archive."""
    tag = time.strftime("lab-%Y%m%d%H%M%S")
    built = tmp_path_factory.mktemp("upstream")
    refs: list[str] = []
    with upstream_registry(lab, UPSTREAM_CONTAINER, UPSTREAM_IP) as port:
        try:
            for service in SERVICES:
                pushed = f"127.0.0.1:{port}/{NAMESPACE}/{service}"
                import_service(lab, built, service, tag, f"{pushed}:{tag}", "-c", "LABEL kolla_version=lab")
                lab.docker("tag", f"{pushed}:{tag}", f"{pushed}:{tag}-b")
                lab.docker("tag", f"{pushed}:{tag}", f"{UPSTREAM}/{NAMESPACE}/{service}:{tag}-archive")
                lab.docker("push", f"{pushed}:{tag}")
                lab.docker("push", f"{pushed}:{tag}-b")
                refs += [
                    f"{pushed}:{tag}",
                    f"{pushed}:{tag}-b",
                    f"{UPSTREAM}/{NAMESPACE}/{service}:{tag}-archive",
                ]
            archive = built / "kolla-images.tar"
            lab.docker("save", "-o", str(archive), *refs[2::3])
            yield Upstream(tag, archive)
        finally:
            if refs:
                lab.docker("rmi", *refs, check=False)


UNTRUST = f"""python3 - <<'PY'
import json
path = "/etc/docker/daemon.json"
config = json.load(open(path))
if "{UPSTREAM}" in config.get("insecure-registries", []):
    config["insecure-registries"].remove("{UPSTREAM}")
    open(path, "w").write(json.dumps(config, indent=2) + "\\n")
    print("changed")
PY
"""


def untrust_upstream(hosts) -> None:
    """deploy1 without the upstream in insecure-registries (as before the module)."""
    if "changed" in hosts.run("deploy1", UNTRUST, check=False):
        hosts.run("deploy1", "systemctl reload docker")


def kolla_images(hosts, name: str) -> str:
    """The images under the namespace a host holds, one per line."""
    listed = hosts.run(name, "docker images --format '{{.Repository}}:{{.Tag}}'")
    return "\n".join(line for line in listed.splitlines() if f"/{NAMESPACE}/" in line)


@pytest.fixture(scope="module")
def deploy_host(hosts):
    """deploy1 not trusting the plain-HTTP upstream: sync-images copies over the registry API."""
    untrust_upstream(hosts)
    yield hosts
    untrust_upstream(hosts)


@pytest.fixture(scope="module")
def node1_images(hosts):
    """node1 without the images pull-images gives it, after the module."""
    yield hosts
    pulled = kolla_images(hosts, "node1").split()
    if pulled:
        hosts.run("node1", "docker rmi " + " ".join(pulled))


def images_section(upstream: Upstream, tag: str, **more) -> dict:
    return {"registry": UPSTREAM, "insecure": True, "tag": tag, "services": list(SERVICES), **more}


@pytest.fixture(scope="module")
def inventory(lab, upstream, tmp_path_factory) -> Path:
    """The lab's inventory with node1 only, and an images: section naming the upstream."""
    folder = tmp_path_factory.mktemp("inventory")
    return inventory_variant(
        Path(lab.inventory), folder, targets=["node1"], images=images_section(upstream, upstream.tag)
    )


@pytest.fixture(scope="module")
def first_sync(fab, inventory, deploy_host, upstream):
    ensure_deployed(fab)
    pid = deploy_host.docker_pid("deploy1")
    result = fab("sync-images", inventory=inventory)
    return result, pid


def test_sync_copies_every_image_keeping_its_namespace(first_sync, deploy_host, upstream):
    result, _ = first_sync

    assert result.code == 0, result.output
    assert "3 images: 3 to copy" in result.output
    assert "deploy1 | sync-images | 3/3 images" in result.output
    assert "sync-images: 3 images: 3 copied" in result.output
    registry = registry_of(deploy_host)
    repositories = catalog(registry)
    for service in SERVICES:
        repository = f"{NAMESPACE}/{service}"
        assert repository in repositories
        digest = head_digest(registry, repository, upstream.tag)
        assert digest == head_digest(UPSTREAM, repository, upstream.tag)
        row = next(line for line in result.output.splitlines() if line.startswith(f"{repository} "))
        assert row.split()[1:3] == [upstream.tag, digest] and row.split()[-1] == "copied"


def test_the_http_upstream_needs_no_trust_and_docker_is_untouched_on_deploy1(first_sync, deploy_host):
    _, pid = first_sync

    trusted = json.loads(deploy_host.run("deploy1", "cat /etc/docker/daemon.json"))["insecure-registries"]
    assert trusted == [registry_of(deploy_host)]
    assert deploy_host.docker_pid("deploy1") == pid
    assert kolla_images(deploy_host, "deploy1") == ""


def test_second_sync_copies_nothing(first_sync, fab, inventory, deploy_host):
    time.sleep(1)  # docker events counts whole seconds: leave the first sync's behind
    since = deploy_host.run("deploy1", "date +%s")
    result = fab("sync-images", inventory=inventory)

    assert result.code == 0, result.output
    assert "sync-images: 3 images: 3 present" in result.output
    assert result.output.count("same digest as upstream") == 3
    assert " images, " not in result.output  # no progress line: nothing was copied
    events = deploy_host.run(
        "deploy1", f"docker events --since {since} --until $(date +%s) --filter type=image"
    )
    assert events == ""  # not a pull, tag or push


def test_check_mode_says_what_would_be_copied_and_copies_nothing(
    fab, deployed, inventory, deploy_host, upstream, lab, tmp_path
):
    inventory_b = inventory_variant(
        Path(lab.inventory), tmp_path, targets=["node1"], images=images_section(upstream, upstream.other_tag)
    )
    result = fab("sync-images", "--check", inventory=inventory_b)

    assert result.code == 0, result.output
    assert "IMAGES (check mode: nothing was copied)" in result.output
    assert result.output.count(" to copy") >= 3
    assert head_digest(registry_of(deploy_host), f"{NAMESPACE}/keystone", upstream.other_tag) is None


def test_a_target_pulls_each_synced_image(first_sync, fab, inventory, node1_images, upstream):
    assert fab("configure-targets", inventory=inventory).code == 0
    result = fab("pull-images", inventory=inventory)

    assert result.code == 0, result.output
    assert "node1 | pull-images | CHANGED | pulled 3; holds 3/3" in result.output
    registry = registry_of(node1_images)
    for service in SERVICES:
        ref = f"{registry}/{NAMESPACE}/{service}:{upstream.tag}"
        digests = node1_images.run("node1", f"docker image inspect -f '{{{{json .RepoDigests}}}}' {ref}")
        digest = head_digest(registry, f"{NAMESPACE}/{service}", upstream.tag)
        assert f"{registry}/{NAMESPACE}/{service}@{digest}" in json.loads(digests)
    again = fab("pull-images", inventory=inventory)
    assert again.code == 0, again.output
    assert "node1 | pull-images | OK | holds 3/3" in again.output


def test_sync_from_an_archive_gives_the_same_images(fab, deploy_host, upstream, tmp_path, lab):
    ensure_deployed(fab)
    images_file = tmp_path / "images.yaml"
    section = images_section(upstream, upstream.archive_tag, archive=str(upstream.archive))
    images_file.write_text(yaml.safe_dump({"images": section}))

    result = fab("sync-images", "--images", str(images_file), inventory=Path(lab.inventory))

    assert result.code == 0, result.output
    assert f"from {upstream.archive} to" in result.output
    assert "sync-images: 3 images: 3 copied" in result.output
    registry = registry_of(deploy_host)
    for service in SERVICES:
        repository = f"{NAMESPACE}/{service}"
        # Never pushed upstream under this tag: it came from the archive, and is the same image
        # (its layers uncompressed, as docker save keeps them: the same config, another manifest).
        assert head_digest(UPSTREAM, repository, upstream.archive_tag) is None
        assert config_digest(registry, repository, upstream.archive_tag) == config_digest(
            UPSTREAM, repository, upstream.tag
        )
    # The archive went to a private folder of the run, removed afterwards.
    assert deploy_host.run("deploy1", "ls -d /tmp/kolla-registry.* 2>/dev/null || echo gone") == "gone"
    assert kolla_images(deploy_host, "deploy1") == ""

    again = fab("sync-images", "--images", str(images_file), inventory=Path(lab.inventory))
    assert again.code == 0, again.output
    assert "sync-images: 3 images: 3 present" in again.output
    assert "uploading" not in again.output


def test_an_image_missing_upstream_fails_and_the_others_are_synced(fab, deploy_host, upstream, lab, tmp_path):
    ensure_deployed(fab)
    missing = f"{NAMESPACE}/not-built:{upstream.other_tag}"
    section = images_section(upstream, upstream.other_tag, names=[missing])
    inventory_b = inventory_variant(Path(lab.inventory), tmp_path, targets=["node1"], images=section)

    result = fab("sync-images", inventory=inventory_b)

    assert result.code == 1, result.output
    row = next(line for line in result.output.splitlines() if line.startswith(f"{NAMESPACE}/not-built "))
    assert "failed" in row and "not found upstream (HTTP 404)" in row
    assert "sync-images: 4 images: 3 copied, 1 failed" in result.output
    registry = registry_of(deploy_host)
    for service in SERVICES:
        repository = f"{NAMESPACE}/{service}"
        assert head_digest(registry, repository, upstream.other_tag) == head_digest(
            UPSTREAM, repository, upstream.other_tag
        )
    assert head_digest(registry, f"{NAMESPACE}/not-built", upstream.other_tag) is None
