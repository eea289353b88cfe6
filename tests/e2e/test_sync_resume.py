"""sync-images blob by blob on the lab: a copy killed halfway resumes with only what is missing.

The benchmark's quick image set (three images sharing two layers, incompressible) sits in
bench-upstream (10.77.0.4), whose link is slowed with tc so that the copy can be caught
halfway; the helper is killed on deploy1, as a lost host or connection would stop it.
"""

from __future__ import annotations

import threading
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from benchmarks import imageset, labnet
from tests.lab import paths

from .conftest import changed_steps, ensure_deployed, inventory_variant, registry_of

pytestmark = pytest.mark.e2e

ACCEPT = "application/vnd.docker.distribution.manifest.v2+json"


def digest(registry: str, service: str) -> str | None:
    request = urllib.request.Request(
        f"http://{registry}/v2/{imageset.NAMESPACE}/{service}/manifests/{imageset.TAG}",
        method="HEAD",
        headers={"Accept": ACCEPT},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.headers["Docker-Content-Digest"]
    except urllib.error.HTTPError:
        return None


@pytest.fixture(scope="module")
def quick_set(lab, fab, hosts, tmp_path_factory):
    """The quick set upstream, none of it in deploy1's registry, and an inventory naming it."""
    ensure_deployed(fab)
    image_set = imageset.build(imageset.QUICK, paths().root / "bench-images")
    labnet.start_upstream()
    imageset.push(image_set, labnet.UPSTREAM)
    hosts.run(
        "deploy1",
        "docker stop -t 5 registry >/dev/null && rm -rf /var/lib/docker/volumes/registry/_data/docker "
        "&& docker start registry >/dev/null",
    )
    section = {"registry": labnet.UPSTREAM, "insecure": True, "namespace": imageset.NAMESPACE, "tag": imageset.TAG,
               "services": list(image_set.images)}  # fmt: skip
    inventory = inventory_variant(Path(lab.inventory), tmp_path_factory.mktemp("resume"), images=section)
    yield image_set, inventory
    labnet.unshape(labnet.UPSTREAM_NAME)
    ensure_deployed(fab)  # the probe, in the registry emptied above


def test_a_sync_killed_halfway_resumes_with_only_what_is_missing(quick_set, fab, hosts):
    image_set, inventory = quick_set
    local = registry_of(hosts)
    # 8 Mbit/s: the 11 MB set takes about 11 s, so a kill at 4 s lands halfway.
    labnet.shape(labnet.UPSTREAM_NAME, "8mbit")
    sent = labnet.sent_bytes(labnet.UPSTREAM_NAME)
    # The helper runs as `python3 -` (its source on stdin); the anchors keep pkill off its own shell.
    killer = "sleep 4; pkill -KILL -f '^python3 -$'; true"
    stopper = threading.Thread(target=hosts.run, args=("deploy1", killer))
    stopper.start()
    interrupted = fab("sync-images", inventory=inventory)
    stopper.join()
    assert interrupted.code != 0, interrupted.output
    first = labnet.sent_bytes(labnet.UPSTREAM_NAME) - sent
    assert 0 < first < image_set.unique_bytes
    labnet.unshape(labnet.UPSTREAM_NAME)

    sent = labnet.sent_bytes(labnet.UPSTREAM_NAME)
    resumed = fab("sync-images", inventory=inventory)
    assert resumed.code == 0, resumed.output
    second = labnet.sent_bytes(labnet.UPSTREAM_NAME) - sent
    # Blobs finished before the kill are not fetched again (the one in flight may be).
    assert second < image_set.unique_bytes - first / 2 + max(blob.size for blob in image_set.layers.values())
    for service in image_set.images:
        assert digest(local, service) == digest(labnet.UPSTREAM, service) is not None

    again = fab("sync-images", inventory=inventory)
    assert again.code == 0 and changed_steps(again.output) == [], again.output
