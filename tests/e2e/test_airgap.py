"""An air-gapped site on the lab: the images exported from the lab's upstream on this (connected) machine,
deploy1 cut off from the upstream by the lab's firewall, the bundle imported with its lock into an empty
registry, every digest the upstream's, and a node pulls.

The upstream is a registry:2 container on the lab network (10.77.0.9), filled with tiny images made by
``docker import`` (one of them twice, so that two images share a layer). skopeo, a client nobody here
wrote, reads the bundle too.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from tests.lab.firewall import cut_off, reconnect

from .conftest import ensure_deployed, inventory_variant, registry_of
from .test_sync_images import head_digest, import_service, upstream_registry, wait_for

pytestmark = pytest.mark.e2e

CONTAINER, IP = "lab-airgap-upstream", "10.77.0.9"
UPSTREAM = f"{IP}:5000"
NAMESPACE = "openstack.kolla"
SERVICES = ("airgap-keystone", "airgap-nova-api")
VOLUME_DATA = "/var/lib/docker/volumes/registry/_data"


def skopeo() -> str:
    """skopeo on this machine (Debian's, installed when missing)."""
    if shutil.which("skopeo") is None:
        subprocess.run(["apt-get", "install", "-y", "-q", "skopeo"], capture_output=True, check=True, timeout=600)
    return shutil.which("skopeo") or "skopeo"


@pytest.fixture(scope="module")
def upstream(lab, tmp_path_factory):
    """The lab's upstream with two images under a tag new on every run."""
    tag = time.strftime("airgap-%Y%m%d%H%M%S")
    built = tmp_path_factory.mktemp("airgap-upstream")
    pushed = []
    with upstream_registry(lab, CONTAINER, IP) as port:
        try:
            for service in SERVICES:
                ref = f"127.0.0.1:{port}/{NAMESPACE}/{service}:{tag}"
                import_service(lab, built, service, tag, ref)
                lab.docker("push", ref)
                pushed.append(ref)
            yield tag
        finally:
            if pushed:
                lab.docker("rmi", *pushed, check=False)


@pytest.fixture(scope="module")
def site(lab, fab, hosts, upstream, tmp_path_factory):
    """The inventory naming the upstream and node1; deploy1's registry emptied and deploy1 cut off from the
    upstream for the module, as a site without internet."""
    ensure_deployed(fab)
    section = {"registry": UPSTREAM, "insecure": True, "tag": upstream, "services": list(SERVICES)}
    inventory = inventory_variant(Path(lab.inventory), tmp_path_factory.mktemp("airgap"), targets=["node1"], images=section)
    hosts.run("deploy1", f"docker stop -t 5 registry >/dev/null && rm -rf {VOLUME_DATA}/docker && docker start registry >/dev/null")
    # The probe back (verify-registry pushes it through the writer): configure-targets proves a node's trust with it.
    verified = fab("verify-registry")
    assert verified.code == 0, verified.output
    cut_off("deploy1", IP)
    try:
        yield inventory
    finally:
        reconnect("deploy1", IP)
        for service in SERVICES:
            hosts.run("node1", f"docker rmi {registry_of(hosts)}/{NAMESPACE}/{service}:{upstream} >/dev/null 2>&1 || true")
        ensure_deployed(fab)  # the probe, in the registry emptied above


@pytest.fixture(scope="module")
def bundle(fab, site, tmp_path_factory):
    """The bundle, written on this machine (connected) from the upstream: a folder, with its lock."""
    path = tmp_path_factory.mktemp("carried") / "kolla-bundle"
    result = fab("export-images", "--to", str(path), inventory=site)
    assert result.code == 0, result.output
    return path, result


def test_the_export_holds_every_image_with_the_upstream_digests_and_its_lock(bundle, upstream):
    from fabfile.images.archive import WRAPS

    path, result = bundle

    assert "localhost | export-images | CHANGED | 2 images: 2 exported" in result.output
    assert f"export-images: lock of 2 images in {path}" in result.output
    index = json.loads((path / "index.json").read_text())
    # A Docker-typed manifest is named through an OCI index wrapping it: the image is the one it wraps.
    named = {e["annotations"]["org.opencontainers.image.ref.name"]: e["annotations"].get(WRAPS, e["digest"]) for e in index["manifests"]}
    assert named == {f"{UPSTREAM}/{NAMESPACE}/{s}:{upstream}": head_digest(UPSTREAM, f"{NAMESPACE}/{s}", upstream) for s in SERVICES}
    assert "digest: sha256:" in (path / "kolla-images.lock.yaml").read_text()


def test_skopeo_reads_the_bundle(bundle, upstream):
    from fabfile.payload.blobcopy import get_manifest
    from fabfile.payload.registry_client import ACCEPT, Client

    path, _ = bundle
    ref = f"{UPSTREAM}/{NAMESPACE}/{SERVICES[0]}:{upstream}"

    shown = subprocess.run([skopeo(), "inspect", f"oci:{path}:{ref}"], capture_output=True, text=True, timeout=120, check=False)
    raw = subprocess.run([skopeo(), "inspect", "--raw", f"oci:{path}:{ref}"], capture_output=True, text=True, timeout=120, check=False)

    assert shown.returncode == 0, shown.stderr
    assert raw.returncode == 0, raw.stderr
    # Its top Digest is the wrapper's (an OCI index): the image inside is the upstream's manifest, layers and all.
    wrapped = [entry["digest"] for entry in json.loads(raw.stdout)["manifests"]]
    assert wrapped == [head_digest(UPSTREAM, f"{NAMESPACE}/{SERVICES[0]}", upstream)]
    image = get_manifest(Client(), f"http://{UPSTREAM}", f"{NAMESPACE}/{SERVICES[0]}", upstream, ACCEPT)[2]
    assert json.loads(shown.stdout)["Layers"] == [layer["digest"] for layer in image["layers"]]


def test_the_deployment_host_is_cut_off_from_the_upstream(site, hosts):
    reached = hosts.run("deploy1", f"curl -s -m 5 -o /dev/null -w '%{{http_code}}' http://{UPSTREAM}/v2/ || echo cut", check=False)

    assert reached.endswith("cut") or reached.startswith("000")


@pytest.fixture(scope="module")
def imported(fab, site, bundle):
    """The bundle imported with its lock into deploy1's emptied registry, cut off from the upstream."""
    path, _ = bundle
    return fab("sync-images", "--archive", str(path), "--locked", str(path), inventory=site)


def test_the_bundle_imported_with_its_lock_gives_the_empty_registry_every_upstream_digest(fab, hosts, site, bundle, imported, upstream):
    path, _ = bundle
    result = imported

    assert result.code == 0, result.output
    assert "sync-images: 2 images: 2 copied" in result.output
    registry = registry_of(hosts)
    for service in SERVICES:
        assert head_digest(registry, f"{NAMESPACE}/{service}", upstream) == head_digest(UPSTREAM, f"{NAMESPACE}/{service}", upstream)
    again = fab("sync-images", "--archive", str(path), "--locked", str(path), inventory=site)
    assert again.code == 0 and "2 images: 2 present" in again.output, again.output


def test_a_node_pulls_the_imported_images(fab, hosts, site, imported, upstream):
    assert imported.code == 0, imported.output
    assert fab("configure-targets", inventory=site).code == 0
    result = fab("pull-images", inventory=site)

    assert result.code == 0, result.output
    assert "node1 | pull-images | CHANGED | pulled 2; holds 2/2" in result.output
    registry = registry_of(hosts)
    for service in SERVICES:
        ref = f"{registry}/{NAMESPACE}/{service}:{upstream}"
        digests = json.loads(hosts.run("node1", f"docker image inspect -f '{{{{json .RepoDigests}}}}' {ref}"))
        assert f"{registry}/{NAMESPACE}/{service}@{head_digest(UPSTREAM, f'{NAMESPACE}/{service}', upstream)}" in digests


def test_a_blob_whose_bytes_are_not_its_digest_is_refused_naming_it_and_the_good_bundle_then_resumes(
    fab, hosts, site, bundle, upstream, tmp_path
):
    from fabfile.payload.blobcopy import get_manifest
    from fabfile.payload.registry_client import ACCEPT, Client

    path, _ = bundle
    broken = tmp_path / "broken-bundle"
    shutil.copytree(path, broken)
    image = get_manifest(Client(), f"http://{UPSTREAM}", f"{NAMESPACE}/{SERVICES[1]}", upstream, ACCEPT)[2]
    layer = image["layers"][0]["digest"]
    blob = broken / "blobs" / "sha256" / layer.removeprefix("sha256:")
    data = bytearray(blob.read_bytes())
    data[len(data) // 2] ^= 0xFF  # the same size, one byte changed
    blob.write_bytes(bytes(data))
    hosts.run("deploy1", f"docker stop -t 5 registry >/dev/null && rm -rf {VOLUME_DATA}/docker && docker start registry >/dev/null")
    registry = registry_of(hosts)
    wait_for(registry)

    refused = fab("sync-images", "--archive", str(broken), "--locked", str(broken), inventory=site)

    assert refused.code == 1, refused.output
    row = [line for line in refused.output.splitlines() if "deploy1 | sync-images | FAILED" in line]
    assert len(row) == 1 and f"{layer}: sha256 " in row[0] and "in the archive" in row[0], refused.output
    assert head_digest(registry, f"{NAMESPACE}/{SERVICES[1]}", upstream) is None  # no tag names a missing blob
    good = head_digest(UPSTREAM, f"{NAMESPACE}/{SERVICES[0]}", upstream)
    assert head_digest(registry, f"{NAMESPACE}/{SERVICES[0]}", upstream) == good

    resumed = fab("sync-images", "--archive", str(path), "--locked", str(path), inventory=site)

    assert resumed.code == 0, resumed.output
    assert "2 images: 1 copied, 1 present" in resumed.output
    for service in SERVICES:
        assert head_digest(registry, f"{NAMESPACE}/{service}", upstream) == head_digest(UPSTREAM, f"{NAMESPACE}/{service}", upstream)
