"""prune-registry against the real registry (Debian's docker-registry, distribution 2.8) on loopback.

Two releases are pushed through the API (random layers, a base layer both
share, two tags on the old one); the scan is the prune's own facts section and
the deletes its program, each run under sh exactly as the deployment host runs
them. As every instance nodes reach, the registry is read-only; the deletes go
through a second registry on the same storage that listens on a unix socket
(the writer), then the collector runs, with the registry serving throughout.
The storage must shrink, and the kept release must still be served whole.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from fabfile import payload
from fabfile.facts import base as facts_base
from fabfile.images.model import Image
from fabfile.images.prune_plan import DELETED, Repository, created_seconds, plan_prune
from fabfile.images.prune_result import Rechecked, after_deletes
from fabfile.images.prune_run import deletes_request, scan_query
from fabfile.model.context import StepContext
from fabfile.model.marks import marks
from fabfile.registry import collect as collect_shell
from fabfile.registry import writer as writer_shell
from fabfile.registry.api import answer
from tests.unit.factories import make_ctx

from . import docker_stand_in
from .registries import DOCKER_CONFIG, DOCKER_IMAGE, OCI_INDEX, Registry, binary, push_blob

REPOSITORIES = ("openstack.kolla/keystone", "openstack.kolla/nova-api")
OLD, OLD_ALIAS, NEW = "2023.2", "2023.2-final", "2024.1"
LAYER_SIZE = 300_000
READ_ONLY = '{"enabled":true}'


def restart(registry: Registry, read_only: bool = False, deletes: bool = True) -> None:
    """The registry again, with its settings as the container gets them: REGISTRY_<SECTION>_<KEY> variables."""
    registry.stop()
    registry.serve(registry.folder / "config.yml", environment(read_only, deletes))


def environment(read_only: bool = False, deletes: bool = True) -> dict:
    env = {**os.environ, "REGISTRY_STORAGE_DELETE_ENABLED": "true" if deletes else "false"}
    return {**env, "REGISTRY_STORAGE_MAINTENANCE_READONLY": READ_ONLY} if read_only else env


def context(registry: Registry) -> StepContext:
    """The deployment host's context for the registry on loopback."""
    return make_ctx(registry={"address": "127.0.0.1", "port": registry.port}, address="127.0.0.1")


def call(method: str, url: str, data: bytes | None = None, headers: dict | None = None) -> tuple[int, dict, bytes]:
    request = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as reply:
            return reply.status, dict(reply.headers), reply.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def push_image(registry: Registry, repository: str, tags: tuple[str, ...], day: int, base_layer: bytes) -> dict:
    """An image of a shared base layer and its own random layer, created on day ``day``; its manifest."""
    layers = [push_blob(registry, repository, base_layer), push_blob(registry, repository, os.urandom(LAYER_SIZE))]
    config = {
        "architecture": "amd64",
        "os": "linux",
        "created": f"2024-01-{day:02}T00:00:00.123456789Z",
        "rootfs": {"type": "layers", "diff_ids": [layer["digest"] for layer in layers]},
    }
    manifest = {
        "schemaVersion": 2,
        "mediaType": DOCKER_IMAGE,
        "config": dict(push_blob(registry, repository, json.dumps(config).encode()), mediaType=DOCKER_CONFIG),
        "layers": layers,
    }
    for tag in tags:
        url = f"{registry.base}/v2/{repository}/manifests/{tag}"
        status, _, _ = call("PUT", url, json.dumps(manifest).encode(), {"Content-Type": DOCKER_IMAGE})
        assert status == 201, status
    return manifest


def scanned(registry: Registry) -> list[Repository]:
    """prune-registry's scan: its facts section, run under sh as the deployment host runs it."""
    section = scan_query(context(registry))
    script = facts_base.script([section])
    done = subprocess.run(["sh", "-c", script], capture_output=True, text=True, check=True, timeout=120)
    found = answer(facts_base.parse(done.stdout, [section]), "scan")
    assert "error" not in found, found
    return [Repository.from_answer(repository) for repository in found["repositories"]]


@contextlib.contextmanager
def writer(registry: Registry, deletes: bool = True):
    """The writer: a second registry on ``registry``'s storage, on a unix socket only; its socket's path."""
    folder = tempfile.mkdtemp(prefix="kr-writer-", dir="/tmp")  # a socket's path has at most 107 bytes
    path = os.path.join(folder, "registry.sock")
    env = {**environment(deletes=deletes), "REGISTRY_HTTP_NET": "unix", "REGISTRY_HTTP_ADDR": path}
    with open(registry.folder / "writer.log", "ab") as log:
        process = subprocess.Popen([binary(), "serve", str(registry.folder / "config.yml")], stdout=log, stderr=log, env=env)
    try:
        deadline = time.monotonic() + 15
        while not answers_on(path):
            assert time.monotonic() < deadline, (registry.folder / "writer.log").read_text()[-2000:]
            time.sleep(0.05)
        yield path
    finally:
        process.terminate()
        process.wait(10)
        shutil.rmtree(folder, ignore_errors=True)


def answers_on(path: str) -> bool:
    try:
        with socket.socket(socket.AF_UNIX) as unix:
            unix.connect(path)
            unix.sendall(b"GET /v2/ HTTP/1.0\r\n\r\n")
            return unix.recv(64).startswith(b"HTTP/1.0 200")
    except OSError:
        return False


def deleted(plan, path: str) -> dict:
    """prune-registry's deletes: its program, run under sh as the deployment host runs it, through the writer."""
    request = deletes_request(plan)
    request["prune"]["socket"] = path
    done = subprocess.run(["sh", "-c", payload.script(request)], capture_output=True, text=True, check=True, timeout=60)
    return payload.last_json(done.stdout)


def stored_bytes(storage: Path) -> int:
    return sum(path.stat().st_size for path in storage.rglob("*") if path.is_file())


def served(registry: Registry, repository: str, manifest: dict) -> bool:
    """Every blob of ``manifest`` comes back whole."""
    for blob in [manifest["config"], *manifest["layers"]]:
        status, _, body = call("GET", f"{registry.base}/v2/{repository}/blobs/{blob['digest']}")
        if status != 200 or "sha256:" + hashlib.sha256(body).hexdigest() != blob["digest"]:
            return False
    return True


def collect(registry: Registry, *flags: str) -> subprocess.CompletedProcess:
    """The registry's garbage collection, as prune-registry runs it in the read-only container."""
    return subprocess.run(
        [binary(), "garbage-collect", *flags, str(registry.folder / "config.yml")],
        env=environment(read_only=True),
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )


def prune_job(registry: Registry, plan, folder: Path, monkeypatch) -> subprocess.CompletedProcess:
    """prune-registry's deletes and collection as its job runs them (``collect.collect_script``), under sh,
    the writer and the collector the real registry binary behind the docker stand-in."""
    for key, value in docker_stand_in.install(folder / "docker", registry.folder / "config.yml", registry.folder / "storage").items():
        monkeypatch.setenv(key, value)
    sockets = Path(tempfile.mkdtemp(prefix="kr-w-", dir="/tmp"))  # a socket's path has at most 107 bytes
    monkeypatch.setattr(writer_shell, "WRITER_DIR", str(sockets))
    monkeypatch.setattr(writer_shell, "WRITER_SOCKET", str(sockets / "registry.sock"))
    monkeypatch.setattr(collect_shell, "STATE_DIR", str(folder / "state"))
    monkeypatch.setattr(collect_shell, "GC_PENDING", str(folder / "state" / "gc-pending"))
    ctx = context(registry)
    request = deletes_request(plan)
    try:
        script = collect_shell.collect_script(ctx, plan.delete_untagged, 15, 60, payload.script(request))
        return subprocess.run(["sh", "-c", script], capture_output=True, text=True, check=False, timeout=120)
    finally:
        shutil.rmtree(sockets, ignore_errors=True)


def test_prune_deletes_the_old_release_and_garbage_collection_frees_its_space_while_the_registry_serves(
    local, tmp_path, monkeypatch
):
    registry = local
    kept, gone = {}, {}
    for repository in REPOSITORIES:
        shared = os.urandom(100_000)
        gone[repository] = push_image(registry, repository, (OLD, OLD_ALIAS), day=1, base_layer=shared)
        kept[repository] = push_image(registry, repository, (NEW,), day=2, base_layer=shared)
    storage = registry.folder / "storage"
    before = stored_bytes(storage)

    plan = plan_prune(scanned(registry), [Image(repository, NEW) for repository in REPOSITORIES], keep=0)

    assert [repo.name for repo in plan.repositories] == list(REPOSITORIES)
    for repo in plan.repositories:
        assert sorted(tag.name for tag in repo.deleted) == [OLD, OLD_ALIAS]
        assert [kept.tag.name for kept in repo.kept] == [NEW]
        assert len(repo.manifests) == 1  # two tags, one image
    assert plan.freed == len(REPOSITORIES) * (LAYER_SIZE + gone[REPOSITORIES[0]]["config"]["size"])

    # The registry nodes reach: read-only (pulls served, pushes refused), and never stopped by the prune.
    restart(registry, read_only=True)
    serving = registry.process.pid
    assert call("POST", f"{registry.base}/v2/{REPOSITORIES[0]}/blobs/uploads/")[0] == 405
    done = prune_job(registry, plan, tmp_path, monkeypatch)

    assert done.returncode == 0, done.stdout + done.stderr
    found = json.loads(marks(done.stdout, "deletes")[-1])
    assert [answer["status"] for answer in found["deleted"]] == [202, 202]
    rechecked = Rechecked.from_answer(plan.deletes, found["deleted"], found["current"])
    assert {repo.status for repo in after_deletes(plan, {}, rechecked).repositories} == {DELETED}
    assert "blobs marked" in marks(done.stdout, "collected")[0]
    assert registry.process.pid == serving and registry.process.poll() is None
    calls = docker_stand_in.calls(tmp_path / "docker")
    assert [call.split()[:4] for call in calls if call.startswith("run")] == [
        ["run", "-d", "--name", "registry-writer"],
        ["run", "--rm", "--name", "registry-gc"],
    ]
    # The writer is gone before the collector starts.
    assert calls.index("rm -f registry-writer", 2) < next(i for i, c in enumerate(calls) if "garbage-collect" in c)

    assert before - stored_bytes(storage) >= len(REPOSITORIES) * LAYER_SIZE
    for repository in REPOSITORIES:
        url = f"{registry.base}/v2/{repository}/manifests/{OLD_ALIAS}"
        assert call("HEAD", url, headers={"Accept": DOCKER_IMAGE})[0] == 404
        url = f"{registry.base}/v2/{repository}/manifests/{NEW}"
        status, _, body = call("GET", url, headers={"Accept": DOCKER_IMAGE})
        assert status == 200 and json.loads(body) == kept[repository]
        assert served(registry, repository, kept[repository])
        assert not served(registry, repository, {"config": gone[repository]["config"], "layers": []})
    # A second scan finds only the kept release.
    assert [tag.name for tag in scanned(registry)[0].tags] == [NEW]


def test_a_writer_without_deletes_refuses_and_the_program_says_why(local):
    push_image(local, REPOSITORIES[0], (OLD,), day=1, base_layer=b"base")
    plan = plan_prune(scanned(local), [Image(REPOSITORIES[0], NEW)], keep=0)

    with writer(local, deletes=False) as path:
        [reply] = deleted(plan, path)["deleted"]

    assert reply == {"status": 405, "error": "the registry does not allow deletes (storage.delete is off)", "kept": ""}


def test_a_tag_pushed_after_the_scan_keeps_the_manifest_it_names_and_the_others_go(local):
    registry, repository = local, REPOSITORIES[0]
    old = push_image(registry, repository, (OLD,), day=1, base_layer=b"base")
    push_image(registry, repository, ("2023.1",), day=1, base_layer=b"older")
    push_image(registry, repository, (NEW,), day=2, base_layer=b"base")
    plan = plan_prune(scanned(registry), [Image(repository, NEW)], keep=0)
    assert sorted(tag.name for tag in plan.repositories[0].deleted) == ["2023.1", OLD]
    # After the scan, before prune-registry makes the registry read-only: someone tags the old release.
    body = json.dumps(old).encode()
    assert call("PUT", f"{registry.base}/v2/{repository}/manifests/rollback", body, {"Content-Type": DOCKER_IMAGE})[0] == 201
    restart(registry, read_only=True)

    with writer(registry) as path:
        found = deleted(plan, path)

    old_digest = "sha256:" + hashlib.sha256(body).hexdigest()
    kept = {answer["kept"] for answer in found["deleted"]}
    assert kept == {"rollback", ""}
    [done] = after_deletes(plan, {}, Rechecked.from_answer(plan.deletes, found["deleted"], found["current"])).repositories
    assert [tag.name for tag in done.deleted] == ["2023.1"]
    assert done.message == f"kept, changed since the scan: {OLD} (rollback uses it)"
    restart(registry)
    for tag in (OLD, "rollback", NEW):
        url = f"{registry.base}/v2/{repository}/manifests/{tag}"
        assert call("HEAD", url, headers={"Accept": DOCKER_IMAGE})[0] == 200, tag
    assert call("HEAD", f"{registry.base}/v2/{repository}/manifests/2023.1", headers={"Accept": DOCKER_IMAGE})[0] == 404
    assert old_digest in found["current"][repository].values()


def push_platforms(registry: Registry, repository: str, tag: str, day: int) -> tuple[dict, dict]:
    """A manifest list of an amd64 and an arm64 image, each pushed by digest only; (index, amd64 manifest)."""
    children = {}
    for architecture in ("amd64", "arm64"):
        manifest = push_image(registry, repository, (), day=day, base_layer=os.urandom(1000))
        body = json.dumps(manifest).encode()
        child = "sha256:" + hashlib.sha256(body).hexdigest()
        url = f"{registry.base}/v2/{repository}/manifests/{child}"
        status, _, _ = call("PUT", url, body, {"Content-Type": DOCKER_IMAGE})
        assert status == 201, status
        children[architecture] = (child, len(body), manifest)
    index = {
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [
            {"mediaType": DOCKER_IMAGE, "digest": digest, "size": size, "platform": {"os": "linux", "architecture": arch}}
            for arch, (digest, size, _) in children.items()
        ],
    }
    url = f"{registry.base}/v2/{repository}/manifests/{tag}"
    status, _, _ = call("PUT", url, json.dumps(index).encode(), {"Content-Type": OCI_INDEX})
    assert status == 201, status
    return index, children["amd64"][2]


def test_a_kept_manifest_list_keeps_its_platform_images_which_delete_untagged_would_not(local):
    registry, repository = local, REPOSITORIES[0]
    _, old_amd64 = push_platforms(registry, repository, OLD, day=1)
    index, amd64 = push_platforms(registry, repository, NEW, day=2)
    storage = registry.folder / "storage"
    before = stored_bytes(storage)

    # Both platform images of a release were made the same day: whichever this host's is, it dates the list.
    plan = plan_prune(scanned(registry), [Image(repository, NEW)], keep=0)

    [repo] = plan.repositories
    assert [tag.name for tag in repo.deleted] == [OLD]
    assert len(repo.manifests) == 3  # the list and both its platform images
    assert [kept.tag.created for kept in repo.kept] == [created_seconds("2024-01-02T00:00:00.123456789Z")]
    assert not plan.delete_untagged

    restart(registry, read_only=True)
    with writer(registry) as path:
        assert [found["status"] for found in deleted(plan, path)["deleted"]] == [202, 202, 202]
    collect(registry)  # as prune-registry runs it when a manifest list stays
    restart(registry)

    assert before - stored_bytes(storage) >= 2 * LAYER_SIZE
    assert served(registry, repository, amd64) and not served(registry, repository, old_amd64)
    child = index["manifests"][0]["digest"]
    url = f"{registry.base}/v2/{repository}/manifests/{child}"
    assert call("GET", url, headers={"Accept": DOCKER_IMAGE})[0] == 200
    # What --delete-untagged would have done (distribution#3178): the kept list loses its images.
    restart(registry, read_only=True)
    collect(registry, "--delete-untagged")
    restart(registry)
    assert call("GET", url, headers={"Accept": DOCKER_IMAGE})[0] == 404
