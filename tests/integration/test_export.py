"""export-images between real registries: the OCI layout it writes (folder and tar), resumed after an
interruption, read by skopeo (a client nobody here wrote), and read back by sync-images --archive --locked into
another registry with the same digests."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import tarfile
from pathlib import Path

import pytest

from fabfile.actions.export import ExportImages
from fabfile.actions.sync import SyncImages
from fabfile.engine.access import RegistryAccess
from fabfile.engine.runner import Runner
from fabfile.images.archive import WRAPS, read_archive
from fabfile.images.export import Bundle, put_lock
from fabfile.images.lock import lock_from_rows
from fabfile.images.lock_read import read_lock
from fabfile.images.model import image_list
from fabfile.images.sync_plan import SyncSource
from fabfile.model.context import StepContext
from fabfile.model.inventory import HERE, ImageSettings
from fabfile.model.outcome import CHANGED, FAILED
from fabfile.payload import blobcopy
from fabfile.payload.registry_client import Client
from tests.conftest import unavailable

from .local_run import local_inventory, run_locally
from .registries import DOCKER_IMAGE, OCI_INDEX, Registry, push_image, push_index

SHARED = os.urandom(300_000)
NAMES = ("kolla/keystone:1", "kolla/nova-api:1", "kolla/multi:1")
REF_NAME = "org.opencontainers.image.ref.name"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
SKOPEO = "/usr/bin/skopeo"


def seed(upstream: Registry) -> dict:
    """Two images sharing a layer, and a two-platform image."""
    made = {
        "kolla/keystone:1": push_image(upstream, "kolla/keystone", "1", [SHARED, os.urandom(50_000)]),
        "kolla/nova-api:1": push_image(upstream, "kolla/nova-api", "1", [SHARED, os.urandom(70_000)]),
    }
    index, _ = push_index(upstream, "kolla/multi", "1", {"amd64": [os.urandom(20_000)], "arm64": [os.urandom(20_000)]})
    made["kolla/multi:1"] = index
    return made


def settings_of(upstream: Registry) -> ImageSettings:
    return ImageSettings(registry=upstream.base.removeprefix("http://"), insecure=True, names=NAMES)


def export(bundle: Bundle, capsys=None):
    """export-images through the engine, on this machine; its row, and the bundle's lock put in."""
    inventory = local_inventory(1)
    runner = Runner(ExportImages(bundle), StepContext(inventory), RegistryAccess(inventory))
    [row] = runner.run([HERE], 1).outcomes
    if row.status != FAILED:
        lock = bundle.lock or lock_from_rows(row.data["images"], bundle.settings.registry, True, (), "", "2025-06-01T12:00:00Z")
        put_lock(bundle.path, bundle.tar, lock)
    return row


def blob_files(folder: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in (folder / "blobs" / "sha256").iterdir()}


def named_digests(index: dict) -> dict[str, str]:
    """Each name of index.json and the digest of its image: the upstream's, a wrapper's unwrapped."""
    return {e["annotations"][REF_NAME]: e["annotations"].get(WRAPS) or e["digest"] for e in index["manifests"]}


def test_a_folder_bundle_holds_every_image_each_blob_once_every_digest_right(upstream, tmp_path, capsys):
    made = seed(upstream)
    settings = settings_of(upstream)
    bundle = Bundle(str(tmp_path / "bundle"), False, settings, tuple(image_list(settings)))

    row = export(bundle)

    assert row.status == CHANGED and "3 images: 3 exported" in row.message, row
    folder = Path(bundle.path)
    assert json.loads((folder / "oci-layout").read_text()) == {"imageLayoutVersion": "1.0.0"}
    index = json.loads((folder / "index.json").read_text())
    assert named_digests(index) == {f"{settings.registry}/{name}": made[name].digest for name in NAMES}
    # The Docker-typed images are named by an OCI index wrapping them; the OCI index upstream as it is.
    types = {e["annotations"][REF_NAME].removeprefix(f"{settings.registry}/"): (e["mediaType"], WRAPS in e["annotations"])
             for e in index["manifests"]}
    assert types == {"kolla/keystone:1": (OCI_INDEX, True), "kolla/nova-api:1": (OCI_INDEX, True), "kolla/multi:1": (OCI_INDEX, False)}
    blobs = blob_files(folder)
    assert all(hashlib.sha256(data).hexdigest() == name for name, data in blobs.items())
    assert upstream.blob_gets()[f"sha256:{hashlib.sha256(SHARED).hexdigest()}"] == 1  # shared: fetched once
    assert not [p for p in folder.rglob("*.partial")]
    lock = read_lock(str(folder))
    assert {entry.image.name: entry.digest for entry in lock.entries} == {name: made[name].digest for name in NAMES}
    assert lock.entry(image_list(settings)[2]).platforms == ("linux/amd64", "linux/arm64")
    shown = capsys.readouterr().out
    assert "localhost | export-images | 3/3 images, " in shown


def test_an_interrupted_folder_export_resumes_fetching_only_what_is_missing_or_wrong(upstream, tmp_path):
    seed(upstream)
    settings = settings_of(upstream)
    bundle = Bundle(str(tmp_path / "bundle"), False, settings, tuple(image_list(settings)))
    export(bundle)
    folder = Path(bundle.path)
    big = sorted(blob_files(folder).items(), key=lambda item: -len(item[1]))
    (folder / "blobs" / "sha256" / big[0][0]).unlink()  # lost
    (folder / "blobs" / "sha256" / big[1][0]).write_bytes(b"torn" + big[1][1][4:])  # damaged
    (folder / "index.json").unlink()
    before = upstream.blob_gets()

    row = export(bundle)

    assert row.status == CHANGED and "3 exported" in row.message and "blobs already there" in row.message, row
    after = upstream.blob_gets()
    again = {digest: count - before.get(digest, 0) for digest, count in after.items() if count != before.get(digest, 0)}
    assert again == {f"sha256:{big[0][0]}": 1, f"sha256:{big[1][0]}": 1}
    assert blob_files(folder)[big[1][0]] == big[1][1]
    assert (folder / "index.json").exists()


def test_a_tar_bundle_cut_off_mid_blob_resumes_and_reads_like_the_folder(upstream, tmp_path):
    seed(upstream)
    settings = settings_of(upstream)
    path = tmp_path / "bundle.tar"
    bundle = Bundle(str(path), True, settings, tuple(image_list(settings)))
    export(bundle)
    with tarfile.open(path) as whole:
        # The last sizeable blob written: those before it are whole.
        member = [m for m in whole.getmembers() if m.name.startswith("blobs/") and m.size > 5_000][-1]
        members = {m.name: whole.extractfile(m).read() for m in whole.getmembers() if m.isfile()}
    with path.open("r+b") as cut:
        cut.truncate(member.offset_data + 1000)  # killed while that blob went in
    before = upstream.blob_gets()

    row = export(bundle)

    assert row.status == CHANGED and "3 exported" in row.message, row
    after = upstream.blob_gets()
    again = {digest for digest, count in after.items() if count != before.get(digest, 0)}
    # That blob again, and whatever came after it in the tar: nothing before it.
    assert "sha256:" + member.name.rsplit("/", 1)[1] in again
    with tarfile.open(path) as resumed:
        kept = [m.name for m in resumed.getmembers() if m.offset < member.offset and m.name.startswith("blobs/")]
    assert kept and not {"sha256:" + name.rsplit("/", 1)[1] for name in kept} & again
    with tarfile.open(path) as resumed:
        names = [m.name for m in resumed.getmembers() if m.name.startswith("blobs/")]
        assert len(names) == len(set(names))  # each blob once
        for name in names:
            assert resumed.extractfile(name).read() == members[name]
    assert set(read_archive(str(path))) == {f"{settings.registry}/{name}" for name in NAMES}
    # Each image's platforms, read from its config in the tar (or its list).
    assert [entry.platforms for entry in read_lock(str(path)).entries] == [
        ("linux/amd64",), ("linux/amd64", "linux/arm64"), ("linux/amd64",)
    ]


@pytest.mark.usefixtures("writer_host")  # read-only registry, the import through the writer
def test_a_bundle_read_back_with_its_lock_gives_another_registry_the_same_digests(upstream, local, tmp_path):
    made = seed(upstream)
    settings = settings_of(upstream)
    first = export(Bundle(str(tmp_path / "first"), False, settings, tuple(image_list(settings))))
    assert first.status == CHANGED
    lock = read_lock(str(tmp_path / "first"))
    # The connected site exports by the lock, with the release's snapshot tags named too.
    lock = lock.__class__(lock.registry, lock.insecure, tuple(e.__class__(**{**e.__dict__, "snapshot": f"{e.image.tag}-r1"})
                                                               for e in lock.entries), lock.platforms, "r1")
    path = tmp_path / "carried.tar"
    row = export(Bundle(str(path), True, settings, tuple(lock.images), lock))
    assert row.status == CHANGED, row

    carried = read_lock(str(path))
    source = SyncSource(settings, str(path), read_archive(str(path)), lock=carried, release=carried.release)
    result, _ = run_locally(SyncImages(carried.images, source), local.port)

    [imported] = result.outcomes
    assert imported.status == CHANGED and "3 images: 3 copied" in imported.message, imported
    for name in NAMES:
        repo = name.split(":")[0]
        assert local.manifest_digest(repo, "1") == local.manifest_digest(repo, "1-r1") == made[name].digest


def skopeo() -> str:
    """Debian's skopeo (installed when missing): a reader of OCI layouts that nobody here wrote."""
    if not os.access(SKOPEO, os.X_OK):
        subprocess.run(["apt-get", "install", "-y", "-q", "skopeo"], capture_output=True, check=False, timeout=600)
    if not os.access(SKOPEO, os.X_OK):
        unavailable("no skopeo on this machine (apt-get install skopeo failed)")
    return SKOPEO


def skopeo_inspect(reference: str, raw: bool = False) -> bytes:
    """``skopeo inspect`` (its JSON, or with --raw the manifest as stored) of the linux/amd64 image."""
    command = [skopeo(), "--override-os", "linux", "--override-arch", "amd64", "inspect", *(["--raw"] if raw else []), reference]
    shown = subprocess.run(command, capture_output=True, timeout=120, check=False)
    assert shown.returncode == 0, shown.stderr.decode(errors="replace")
    return shown.stdout


def bundle_files(path: Path, tar: bool) -> tuple[list[str], dict]:
    """The blobs a bundle holds (each name as often as it is there) and its index.json (a tar's last)."""
    if not tar:
        return [f"blobs/sha256/{name}" for name in blob_files(path)], json.loads((path / "index.json").read_text())
    with tarfile.open(path) as bundle:
        members = bundle.getmembers()
        index = json.loads(bundle.extractfile([m for m in members if m.name == "index.json"][-1]).read())
        return [m.name for m in members if m.name.startswith("blobs/")], index


def config_of(registry: Registry, repo: str, image: dict) -> dict:
    response = blobcopy.fetch(Client(), registry.base, repo, image["config"]["digest"])
    try:
        return json.loads(response.read())
    finally:
        response.close()


@pytest.mark.usefixtures("writer_host")  # read-only registry, the import through the writer
@pytest.mark.parametrize("tar", [False, True], ids=["folder", "tar"])
def test_skopeo_reads_every_image_of_the_bundle_and_the_import_still_gives_the_upstream_digests(upstream, local, tmp_path, tar):
    made = seed(upstream)
    # A Docker manifest list too: the upstream's images are Docker-typed (schema 2 and lists), their digests kept.
    layers = {"amd64": [os.urandom(30_000)], "arm64": [os.urandom(30_000)]}
    made["kolla/listed:1"], children = push_index(upstream, "kolla/listed", "1", layers, DOCKER_LIST)
    names = (*NAMES, "kolla/listed:1")
    settings = ImageSettings(registry=upstream.base.removeprefix("http://"), insecure=True, names=names)
    path = tmp_path / ("bundle.tar" if tar else "bundle")
    bundle = Bundle(str(path), tar, settings, tuple(image_list(settings)))
    assert "4 images: 4 exported" in export(bundle).message
    again = export(bundle)  # a second run: every blob (the wrappers too) already there

    assert again.status == CHANGED and "4 exported" in again.message, again
    held, index = bundle_files(path, tar)
    assert len(held) == len(set(held))  # each blob once
    amd64 = {
        "kolla/multi:1": upstream.manifest("kolla/multi", "1")["manifests"][0]["digest"],
        "kolla/listed:1": children["amd64"].digest,
    }
    for name in names:
        repo, tag = name.split(":")
        reference = f"{'oci-archive' if tar else 'oci'}:{path}:{settings.registry}/{name}"
        shown = json.loads(skopeo_inspect(reference))
        image = upstream.manifest(repo, amd64.get(name, tag))
        config = config_of(upstream, repo, image)
        assert (shown["Os"], shown["Architecture"]) == (config["os"], config["architecture"]) == ("linux", "amd64"), name
        assert shown["Layers"] == [layer["digest"] for layer in image["layers"]], name
        raw = skopeo_inspect(reference, raw=True)
        entries = [(e["mediaType"], e["digest"]) for e in json.loads(raw).get("manifests") or []]
        if name == "kolla/multi:1":  # an OCI index upstream: named as it is
            assert "sha256:" + hashlib.sha256(raw).hexdigest() == made[name].digest
        elif name == "kolla/listed:1":  # a Docker list: the wrapper lists the list's entries
            assert entries == [(DOCKER_IMAGE, children["amd64"].digest), (DOCKER_IMAGE, children["arm64"].digest)]
        else:  # a Docker image: the wrapper lists it
            assert entries == [(DOCKER_IMAGE, made[name].digest)], name

    archived = read_archive(str(path))
    assert {ref: json.loads(item.descriptor)["digest"] for ref, item in archived.items()} == {
        f"{settings.registry}/{name}": made[name].digest for name in names
    }
    carried = read_lock(str(path))
    result, _ = run_locally(SyncImages(carried.images, SyncSource(settings, str(path), archived, lock=carried)), local.port)
    [imported] = result.outcomes
    assert imported.status == CHANGED and "4 images: 4 copied" in imported.message, imported
    for name in names:
        assert local.manifest_digest(*name.split(":")) == made[name].digest, name
    wrappers = [entry["digest"] for entry in index["manifests"] if WRAPS in entry["annotations"]]
    assert len(wrappers) == 3
    assert not [w for w in wrappers for name in names if local.manifest_digest(name.split(":")[0], w)]  # never pushed
