"""export-images between real registries: the OCI layout it writes (folder and tar), resumed after an
interruption, and read back by sync-images --archive --locked into another registry with the same digests."""

from __future__ import annotations

import hashlib
import json
import os
import tarfile
from pathlib import Path

import pytest

from fabfile.actions.export import ExportImages
from fabfile.actions.sync import SyncImages
from fabfile.engine.access import RegistryAccess
from fabfile.engine.runner import Runner
from fabfile.images.archive import read_archive
from fabfile.images.export import Bundle, put_lock
from fabfile.images.lock import lock_from_rows
from fabfile.images.lock_read import read_lock
from fabfile.images.model import image_list
from fabfile.images.sync_plan import SyncSource
from fabfile.model.context import StepContext
from fabfile.model.inventory import HERE, ImageSettings
from fabfile.model.outcome import CHANGED, FAILED

from .local_run import local_inventory, run_locally
from .registries import Registry, push_image, push_index

SHARED = os.urandom(300_000)
NAMES = ("kolla/keystone:1", "kolla/nova-api:1", "kolla/multi:1")


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


def test_a_folder_bundle_holds_every_image_each_blob_once_every_digest_right(upstream, tmp_path, capsys):
    made = seed(upstream)
    settings = settings_of(upstream)
    bundle = Bundle(str(tmp_path / "bundle"), False, settings, tuple(image_list(settings)))

    row = export(bundle)

    assert row.status == CHANGED and "3 images: 3 exported" in row.message, row
    folder = Path(bundle.path)
    assert json.loads((folder / "oci-layout").read_text()) == {"imageLayoutVersion": "1.0.0"}
    index = json.loads((folder / "index.json").read_text())
    named = {entry["annotations"]["org.opencontainers.image.ref.name"]: entry["digest"] for entry in index["manifests"]}
    assert named == {f"{settings.registry}/{name}": made[name].digest for name in NAMES}
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
