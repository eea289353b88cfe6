"""prune-registry against the real registry (Debian's docker-registry, distribution 2.8) on loopback.

Two releases are pushed through the API (random layers, a base layer both
share, two tags on the old one); the scan and the deletes go through the
helper exactly as a host runs it (``python3 -`` with the embedded request);
garbage is collected with the registry read-only, as prune-registry does it.
The storage must shrink, and the kept release must still be served whole.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from fabfile.images.model import Image
from fabfile.images.prune_plan import DELETED, Repository, after_deletes, created_seconds, plan_prune
from fabfile.registry.api import helper_script
from fabfile.registry.collect import Container, shell_functions
from tests.conftest import docker_registry_binary

from .factories import container, docker_host, make_ctx

BINARY = "docker-registry"
REPOSITORIES = ("openstack.kolla/keystone", "openstack.kolla/nova-api")
OLD, OLD_ALIAS, NEW = "2023.2", "2023.2-final", "2024.1"
IMAGE = "application/vnd.docker.distribution.manifest.v2+json"
LAYER_SIZE = 300_000
READ_ONLY = '{"enabled":true}'


@dataclass
class Registry:
    """A running docker-registry: its URL, storage, config, and how to start it again."""

    base: str
    storage: Path
    config: Path
    process: subprocess.Popen

    def restart(self, read_only: bool = False, deletes: bool = True) -> None:
        stop(self.process)
        self.process = start(self.config, self.base, environment(read_only, deletes))


def environment(read_only: bool = False, deletes: bool = True) -> dict:
    """The registry's settings as the container gets them: REGISTRY_<SECTION>_<KEY> variables."""
    env = {**os.environ, "REGISTRY_STORAGE_DELETE_ENABLED": "true"} if deletes else dict(os.environ)
    return {**env, "REGISTRY_STORAGE_MAINTENANCE_READONLY": READ_ONLY} if read_only else env


def start(config: Path, base: str, env: dict | None = None) -> subprocess.Popen:
    process = subprocess.Popen(
        [BINARY, "serve", str(config)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{base}/v2/", timeout=1):
                return process
        except OSError:
            time.sleep(0.05)
    stop(process)
    raise AssertionError(f"{BINARY} did not answer on {base} within 10 s")


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@pytest.fixture
def registry(tmp_path) -> Iterator[Registry]:
    docker_registry_binary()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    storage = tmp_path / "storage"
    config = tmp_path / "config.yml"
    config.write_text(
        "version: 0.1\nlog:\n  level: error\n"
        f"storage:\n  filesystem:\n    rootdirectory: {storage}\n"
        f"http:\n  addr: 127.0.0.1:{port}\n"
    )
    base = f"http://127.0.0.1:{port}"
    running = Registry(base, storage, config, start(config, base, environment()))
    yield running
    stop(running.process)


def call(
    method: str, url: str, data: bytes | None = None, headers: dict | None = None
) -> tuple[int, dict, bytes]:
    request = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, dict(answer.headers), answer.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def push_blob(base: str, repository: str, data: bytes) -> dict:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    status, headers, _ = call("POST", f"{base}/v2/{repository}/blobs/uploads/")
    assert status == 202, status
    location = headers["Location"]
    location = location if "://" in location else base + location
    joiner = "&" if "?" in location else "?"
    status, _, _ = call(
        "PUT", f"{location}{joiner}digest={digest}", data, {"Content-Type": "application/octet-stream"}
    )
    assert status == 201, status
    return {"digest": digest, "size": len(data)}


def push_image(base: str, repository: str, tags: tuple[str, ...], day: int, base_layer: bytes) -> dict:
    """An image of a shared base layer and its own random layer, created on day ``day``; its manifest."""
    layers = [push_blob(base, repository, base_layer), push_blob(base, repository, os.urandom(LAYER_SIZE))]
    config = {
        "architecture": "amd64",
        "os": "linux",
        "created": f"2024-01-{day:02}T00:00:00.123456789Z",
        "rootfs": {"type": "layers", "diff_ids": [layer["digest"] for layer in layers]},
    }
    manifest = {
        "schemaVersion": 2,
        "mediaType": IMAGE,
        "config": {"mediaType": "application/vnd.docker.container.image.v1+json"}
        | push_blob(base, repository, json.dumps(config).encode()),
        "layers": [
            {"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip"} | layer for layer in layers
        ],
    }
    for tag in tags:
        status, _, _ = call(
            "PUT",
            f"{base}/v2/{repository}/manifests/{tag}",
            json.dumps(manifest).encode(),
            {"Content-Type": IMAGE},
        )
        assert status == 201, status
    return manifest


def helper(request: dict) -> dict:
    """The registry API helper, run the way a host runs it."""
    done = subprocess.run(
        ["sh", "-c", helper_script(request)], capture_output=True, text=True, check=True, timeout=60
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def stored_bytes(storage: Path) -> int:
    return sum(path.stat().st_size for path in storage.rglob("*") if path.is_file())


def served(base: str, repository: str, manifest: dict) -> bool:
    """Every blob of ``manifest`` comes back whole."""
    for blob in [manifest["config"], *manifest["layers"]]:
        status, _, body = call("GET", f"{base}/v2/{repository}/blobs/{blob['digest']}")
        if status != 200 or "sha256:" + hashlib.sha256(body).hexdigest() != blob["digest"]:
            return False
    return True


def test_prune_deletes_the_old_release_and_garbage_collection_frees_its_space(registry):
    base = registry.base
    kept, gone = {}, {}
    for repository in REPOSITORIES:
        shared = os.urandom(100_000)
        gone[repository] = push_image(base, repository, (OLD, OLD_ALIAS), day=1, base_layer=shared)
        kept[repository] = push_image(base, repository, (NEW,), day=2, base_layer=shared)
    before = stored_bytes(registry.storage)

    scan = helper({"scan": base})
    repositories = [Repository.from_answer(found) for found in scan["repositories"]]
    plan = plan_prune(repositories, [Image(repository, NEW) for repository in REPOSITORIES], keep=0)

    assert [repo.name for repo in plan.repositories] == list(REPOSITORIES)
    for repo in plan.repositories:
        assert sorted(tag.name for tag in repo.deleted) == [OLD, OLD_ALIAS]
        assert [kept.tag.name for kept in repo.kept] == [NEW]
        assert len(repo.manifests) == 1  # two tags, one image
    assert plan.freed == len(REPOSITORIES) * (LAYER_SIZE + gone[REPOSITORIES[0]]["config"]["size"])

    answers = helper({"delete": [[base, repository, digest] for repository, digest in plan.deletes]})[
        "deleted"
    ]
    assert [answer["status"] for answer in answers] == [202, 202]
    assert {repo.status for repo in after_deletes(plan, {}).repositories} == {DELETED}
    for repository in REPOSITORIES:
        assert (
            call("HEAD", f"{base}/v2/{repository}/manifests/{OLD_ALIAS}", headers={"Accept": IMAGE})[0] == 404
        )

    # prune-registry's collection: the registry read-only (pulls served, pushes refused) meanwhile.
    registry.restart(read_only=True)
    assert call("POST", f"{base}/v2/{REPOSITORIES[0]}/blobs/uploads/")[0] in (405, 503)
    collected = subprocess.run(
        [BINARY, "garbage-collect", "--delete-untagged", str(registry.config)],
        env=environment(read_only=True),
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert "blobs marked" in collected.stdout
    assert all(served(base, repository, kept[repository]) for repository in REPOSITORIES)
    registry.restart()

    assert before - stored_bytes(registry.storage) >= len(REPOSITORIES) * LAYER_SIZE
    for repository in REPOSITORIES:
        status, _, body = call("GET", f"{base}/v2/{repository}/manifests/{NEW}", headers={"Accept": IMAGE})
        assert status == 200 and json.loads(body) == kept[repository]
        assert served(base, repository, kept[repository])
        assert not served(base, repository, {"config": gone[repository]["config"], "layers": []})
    # Pushes work again, and a second scan finds only the kept release.
    assert helper({"scan": base})["repositories"][0]["tags"][0]["tag"] == NEW
    push_image(base, REPOSITORIES[0], ("2024.2",), day=3, base_layer=b"new")


def test_a_registry_without_deletes_refuses_and_the_helper_says_why(registry):
    registry.restart(deletes=False)
    push_image(registry.base, REPOSITORIES[0], (OLD,), day=1, base_layer=b"base")
    [found] = helper({"scan": registry.base})["repositories"]

    [answer] = helper({"delete": [[registry.base, REPOSITORIES[0], found["tags"][0]["digest"]]]})["deleted"]

    assert answer == {"status": 405, "error": "the registry does not allow deletes (storage.delete is off)"}


def test_the_collection_waits_for_the_real_registry_to_answer_and_gives_up_in_time(registry):
    """The ``up`` wait of the collect script, with the host's python3, for the registry and a closed port."""
    answering = replace(
        Container.of(docker_host(container=container()), make_ctx()), url=f"{registry.base}/v2/"
    )
    closed = replace(answering, url="http://127.0.0.1:9/v2/")

    def up(target: Container) -> int:
        script = f"{shell_functions(target, 2)}\nup\n"
        return subprocess.run(["sh", "-c", script], capture_output=True, check=False, timeout=30).returncode

    started = time.monotonic()
    assert up(answering) == 0
    assert up(closed) == 1
    assert time.monotonic() - started < 10


INDEX = "application/vnd.oci.image.index.v1+json"


def push_index(base: str, repository: str, tag: str, day: int) -> tuple[dict, dict]:
    """A manifest list of an amd64 and an arm64 image, each pushed by digest only; (index, amd64 manifest)."""
    children = {}
    for architecture in ("amd64", "arm64"):
        manifest = push_image(base, repository, (), day=day, base_layer=os.urandom(1000))
        body = json.dumps(manifest).encode()
        child = "sha256:" + hashlib.sha256(body).hexdigest()
        status, _, _ = call("PUT", f"{base}/v2/{repository}/manifests/{child}", body, {"Content-Type": IMAGE})
        assert status == 201, status
        children[architecture] = (child, len(body), manifest)
    index = {
        "schemaVersion": 2,
        "mediaType": INDEX,
        "manifests": [
            {
                "mediaType": IMAGE,
                "digest": digest,
                "size": size,
                "platform": {"os": "linux", "architecture": arch},
            }
            for arch, (digest, size, _) in children.items()
        ],
    }
    status, _, _ = call(
        "PUT", f"{base}/v2/{repository}/manifests/{tag}", json.dumps(index).encode(), {"Content-Type": INDEX}
    )
    assert status == 201, status
    return index, children["amd64"][2]


def collect(registry: Registry, *flags: str) -> None:
    subprocess.run(
        [BINARY, "garbage-collect", *flags, str(registry.config)],
        env=environment(read_only=True),
        capture_output=True,
        check=True,
        timeout=60,
    )


def test_a_kept_manifest_list_keeps_its_platform_images_which_delete_untagged_would_not(registry):
    base, repository = registry.base, REPOSITORIES[0]
    _, old_amd64 = push_index(base, repository, OLD, day=1)
    index, amd64 = push_index(base, repository, NEW, day=2)
    before = stored_bytes(registry.storage)

    scan = helper({"scan": base, "architecture": "amd64"})
    plan = plan_prune(
        [Repository.from_answer(r) for r in scan["repositories"]], [Image(repository, NEW)], keep=0
    )

    [repo] = plan.repositories
    assert [tag.name for tag in repo.deleted] == [OLD]
    assert len(repo.manifests) == 3  # the list and both its platform images
    assert [kept.tag.created for kept in repo.kept] == [created_seconds("2024-01-02T00:00:00.123456789Z")]
    assert not plan.delete_untagged
    answers = helper({"delete": [[base, name, digest] for name, digest in plan.deletes]})["deleted"]
    assert [answer["status"] for answer in answers] == [202, 202, 202]

    collect(registry)  # as prune-registry runs it when a manifest list stays

    assert before - stored_bytes(registry.storage) >= 2 * LAYER_SIZE
    assert served(base, repository, amd64) and not served(base, repository, old_amd64)
    child = index["manifests"][0]["digest"]
    assert call("GET", f"{base}/v2/{repository}/manifests/{child}", headers={"Accept": IMAGE})[0] == 200
    # What --delete-untagged would have done (distribution#3178): the kept list loses its images.
    collect(registry, "--delete-untagged")
    registry.restart()
    assert call("GET", f"{base}/v2/{repository}/manifests/{child}", headers={"Accept": IMAGE})[0] == 404
