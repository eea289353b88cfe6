"""verify-registry's probe push through the writer, against the real registry (read-only, as nodes see it)."""

from __future__ import annotations

import gzip
import hashlib
import json
import subprocess
import urllib.request

from fabfile.model.marks import failure_reason, marks
from fabfile.registry.probe_push import probe_push_script
from tests.unit.factories import make_ctx

from . import docker_stand_in
from .registries import DOCKER_IMAGE


def push(local) -> subprocess.CompletedProcess:
    ctx = make_ctx(registry={"address": "127.0.0.1", "port": local.port}, address="127.0.0.1")
    return subprocess.run(["sh", "-c", probe_push_script(ctx)], capture_output=True, text=True, check=False, timeout=120)


def blob(local, digest: str) -> bytes:
    with urllib.request.urlopen(f"{local.base}/v2/kolla-registry/probe/blobs/{digest}", timeout=10) as answer:
        data = answer.read()
    assert "sha256:" + hashlib.sha256(data).hexdigest() == digest
    return data


def test_the_probe_goes_through_the_writer_into_the_read_only_registry_and_pulls_whole(local, writer_host):
    done = push(local)

    assert done.returncode == 0, done.stdout + done.stderr
    assert marks(done.stdout, "pushed") == [f"127.0.0.1:{local.port}/kolla-registry/probe:latest through the writer"]
    manifest = local.manifest("kolla-registry/probe", "latest")
    assert manifest["mediaType"] == DOCKER_IMAGE
    config = blob(local, manifest["config"]["digest"])
    layer = blob(local, manifest["layers"][0]["digest"])
    # What docker checks on a pull: the uncompressed layer is the config's diff_id.
    diff_id = "sha256:" + hashlib.sha256(gzip.decompress(layer)).hexdigest()
    assert json.loads(config)["rootfs"]["diff_ids"] == [diff_id]
    assert "created" not in json.loads(config)  # undated: prune-registry keeps it
    assert docker_stand_in.calls(writer_host)[-1] == "rm -f registry-writer"


def uploads(writer_host) -> int:
    """Blob uploads the writer took (its access log)."""
    return (writer_host / "registry-writer.log").read_text().count('"POST /v2/kolla-registry/probe/blobs/uploads/')


def test_a_second_push_sends_no_blob_again_and_gives_the_same_digest(local, writer_host):
    push(local)
    first = local.manifest_digest("kolla-registry/probe", "latest")
    assert first and uploads(writer_host) == 2  # the layer and the config

    again = push(local)

    assert again.returncode == 0 and local.manifest_digest("kolla-registry/probe", "latest") == first
    assert uploads(writer_host) == 2


def test_a_writer_that_cannot_start_fails_the_push_in_one_line(local, writer_host, monkeypatch):
    monkeypatch.setenv("KR_DOCKER_FAIL_RUN", "no space left on device")

    done = push(local)

    assert done.returncode != 0
    assert failure_reason(done.stdout, done.stderr) == (
        "could not start the writer registry-writer: docker: Error response from daemon: no space left on device"
    )
    assert local.manifest_digest("kolla-registry/probe", "latest") == ""
