"""The lock: written from a sync's rows, sorted and diff-friendly, read back with every value checked."""

from __future__ import annotations

import io
import os
import tarfile

import pytest
import yaml

from fabfile.engine.report import Result
from fabfile.images import decide
from fabfile.images.lock import DEFAULT_NAME, Lock, LockEntry, lock_from_rows, render_lock, write_lock
from fabfile.images.lock_read import LockError, read_lock
from fabfile.images.model import PRESENT, TO_COPY, TO_TAG, Image, Manifest, Synced
from fabfile.model.inventory import ImageSettings
from fabfile.model.outcome import FAILED, Outcome
from fabfile.tasks import sync as sync_task

D1, D2, D3 = ("sha256:" + c * 64 for c in "123")
KEYSTONE = Image("openstack.kolla/keystone", "2025.1-ubuntu-noble")
NOVA = Image("openstack.kolla/nova-api", "2025.1-ubuntu-noble")
EARLIER, NOW = "2025-05-01T08:00:00Z", "2025-06-01T12:00:00Z"


def rows() -> list[dict]:
    """--json's rows of a sync: nova copied (a list's platforms), keystone present, one failed."""
    return [
        {"image": NOVA.name, "status": "copied", "digest": D2, "platforms": ["linux/arm64", "linux/amd64"],
         "upstream_digest": D3, "snapshot": "2025.1-ubuntu-noble-r3"},
        {"image": KEYSTONE.name, "status": "present", "digest": D1, "platforms": ["linux/amd64"], "upstream_digest": D1},
        {"image": "openstack.kolla/missing:1", "status": "failed", "digest": "", "message": "not found upstream"},
    ]


def test_a_lock_holds_what_was_copied_or_present_sorted_with_the_upstream_digest_only_when_it_differs():
    lock = lock_from_rows(rows(), "quay.io", False, ["linux/amd64", "linux/arm64"], "r3", NOW)

    assert [entry.image for entry in lock.entries] == [KEYSTONE, NOVA]  # sorted by name
    keystone, nova = lock.entries
    assert (nova.digest, nova.upstream_digest, nova.platforms) == (D2, D3, ("linux/amd64", "linux/arm64"))
    assert nova.reference == D3 and keystone.reference == D1 and keystone.upstream_digest == ""
    assert nova.upstream == f"quay.io/{NOVA.name}" and nova.snapshot == "2025.1-ubuntu-noble-r3"
    text = render_lock(lock)
    document = yaml.safe_load(text)
    assert [item["image"] for item in document["images"]] == [KEYSTONE.name, NOVA.name]  # sorted by name
    assert list(document["images"][0]) == sorted(document["images"][0])  # keys sorted: diff-friendly
    assert document["release"] == "r3" and document["platforms"] == ["linux/amd64", "linux/arm64"]
    assert text.startswith("# kolla-registry lock: ")


def test_an_image_whose_digest_did_not_change_keeps_its_time_so_an_idle_sync_leaves_the_file_as_it_was():
    previous = lock_from_rows(rows(), "quay.io", False, [], "", EARLIER)
    again = lock_from_rows(rows(), "quay.io", False, [], "", NOW)
    changed = [dict(row, digest=D3) if row["image"] == KEYSTONE.name else row for row in rows()]

    assert render_lock(lock_from_rows(rows(), "quay.io", False, [], "", NOW, previous)) == render_lock(previous)
    assert render_lock(again) != render_lock(previous)
    moved = lock_from_rows(changed, "quay.io", False, [], "", NOW, previous)
    assert {entry.image: entry.synced for entry in moved.entries} == {NOVA: EARLIER, KEYSTONE: NOW}


def test_a_written_lock_reads_back_the_same(tmp_path):
    lock = lock_from_rows(rows(), "10.0.0.5:5000", True, ["linux/amd64"], "r3", NOW)
    path = tmp_path / "site" / DEFAULT_NAME

    write_lock(str(path), lock)

    assert read_lock(str(path)) == lock
    assert oct(path.stat().st_mode & 0o777) == "0o644"
    assert [name.name for name in path.parent.iterdir()] == [DEFAULT_NAME]  # no temporary file left


def test_a_lock_is_read_from_an_export_bundle_folder_or_tar(tmp_path):
    lock = lock_from_rows(rows(), "quay.io", False, [], "", NOW)
    folder = tmp_path / "bundle"
    folder.mkdir()
    write_lock(str(folder / DEFAULT_NAME), lock)
    bundle = tmp_path / "bundle.tar"
    with tarfile.open(bundle, "w") as tar:
        tar.add(folder / DEFAULT_NAME, arcname=DEFAULT_NAME)
    empty = tmp_path / "empty.tar"
    with tarfile.open(empty, "w") as tar:
        info = tarfile.TarInfo("oci-layout")
        tar.addfile(info, io.BytesIO(b""))

    assert read_lock(str(folder)) == read_lock(str(bundle)) == lock
    with pytest.raises(LockError, match="a tar without kolla-images.lock.yaml: not an export bundle"):
        read_lock(str(empty))


GOOD = {
    "kolla_registry_lock": 1,
    "registry": "quay.io",
    "insecure": False,
    "images": [{"image": KEYSTONE.name, "upstream": f"quay.io/{KEYSTONE.name}", "digest": D1,
                "platforms": ["linux/amd64"], "synced": NOW}],
}


@pytest.mark.parametrize(
    ("change", "key", "problem"),
    [
        ({"registry": "quay.io; touch /tmp/x"}, "registry", "is not a registry"),
        ({"release": "r3 && reboot"}, "release", "is not a release name"),
        ({"platforms": ["linux/$(id)"]}, "platforms[0]", "is not a platform"),
        ({"images": [dict(GOOD["images"][0], digest="sha256:../../etc/passwd")]}, "images[0].digest", "is not a sha256"),
        ({"images": [dict(GOOD["images"][0], image="Keystone:1")]}, "images[0].image", "is not an image"),
        ({"images": [dict(GOOD["images"][0], snapshot="a b")]}, "images[0].snapshot", "is not an image tag"),
        ({"images": [dict(GOOD["images"][0], upstream="quay.io/x:1 y")]}, "images[0].upstream", "is not an image reference"),
        ({"images": [dict(GOOD["images"][0], synced="yesterday")]}, "images[0].synced", "is not a UTC time"),
        ({"images": [GOOD["images"][0], GOOD["images"][0]]}, "images", "is listed twice"),
        ({"images": []}, "images", "expected a list of images"),
        ({"insecure": "no"}, "insecure", "expected true or false"),
    ],
)
def test_every_value_of_a_lock_is_checked_and_the_error_names_the_file_and_key(tmp_path, change, key, problem):
    path = tmp_path / "kolla.lock.yaml"
    path.write_text(yaml.safe_dump({**GOOD, **change}))

    with pytest.raises(LockError) as caught:
        read_lock(str(path))

    assert str(caught.value).startswith(f"{path}: {key}: ") and problem in str(caught.value)


def test_a_file_that_is_not_a_lock_is_named(tmp_path):
    path = tmp_path / "hosts.yaml"
    path.write_text("deploy_host: {name: deploy1}\n")

    with pytest.raises(LockError, match=f"^{path}: not a kolla-registry lock"):
        read_lock(str(path))
    with pytest.raises(LockError, match="cannot read the lock"):
        read_lock(str(tmp_path / "absent.yaml"))


def entry(digest: str = D1, upstream_digest: str = "") -> LockEntry:
    return LockEntry(KEYSTONE, f"quay.io/{KEYSTONE.name}", digest, upstream_digest)


@pytest.mark.parametrize(
    ("upstream", "local", "status", "message"),
    [
        (Manifest(200, D1), Manifest(200, D1), PRESENT, "the locked digest"),
        (Manifest(200, D1), Manifest(200, D2), TO_COPY, f"differs from the lock ({D2})"),
        (Manifest(200, D1), Manifest(404), TO_COPY, "the locked digest"),
        (Manifest(404, error="HTTP 404"), Manifest(404), FAILED, f"locked digest {D1} is no longer upstream (HTTP 404)"),
        (Manifest(404, error="HTTP 404"), Manifest(200, D1), PRESENT, "the locked digest"),
        (Manifest(0, error="connection refused"), Manifest(404), FAILED, "upstream: connection refused"),
    ],
)
def test_locked_decisions(upstream, local, status, message):
    found = decide.decide_locked(KEYSTONE, entry(), upstream, local)

    assert (found.status, found.message) == (status, message)
    if status == TO_COPY:
        assert found.digest == D1


@pytest.mark.parametrize(
    ("item", "held", "known", "status"),
    [
        (Synced(KEYSTONE, PRESENT, D1), Manifest(404), True, TO_TAG),
        (Synced(KEYSTONE, PRESENT, D1), Manifest(200, D1), True, PRESENT),
        (Synced(KEYSTONE, PRESENT, D1), Manifest(200, D2), False, FAILED),
        (Synced(KEYSTONE, TO_COPY, D1), Manifest(200, D2), True, FAILED),
        # Only some platforms copied: the digest the tag will name is the program's to check.
        (Synced(KEYSTONE, TO_COPY, D1), Manifest(200, D2), False, TO_COPY),
        (Synced(KEYSTONE, TO_COPY, D1), Manifest(404), True, TO_COPY),
        (Synced(KEYSTONE, TO_COPY, D1), Manifest(500, error="HTTP 500"), True, FAILED),
        # From a docker save archive: the digest comes from the push.
        (Synced(KEYSTONE, TO_COPY, ""), Manifest(200, D2), True, TO_COPY),
    ],
)
def test_snapshot_decisions(item, held, known, status):
    found = decide.decide_snapshot(item, "2025.1-ubuntu-noble-r3", held, known)

    assert found.status == status
    if status != FAILED:
        assert found.snapshot == "2025.1-ubuntu-noble-r3"
    elif held.status == 200:
        assert found.message == f"{decide.CONFLICT}: 2025.1-ubuntu-noble-r3 already names {D2}"


def test_the_lock_file_is_written_atomically_over_the_old_one(tmp_path, monkeypatch):
    path = tmp_path / DEFAULT_NAME
    path.write_text("old\n")

    def broken(*args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", broken)
    with pytest.raises(OSError):
        write_lock(str(path), Lock("quay.io", entries=(entry(),)))

    assert path.read_text() == "old\n" and [p.name for p in tmp_path.iterdir()] == [DEFAULT_NAME]


def sync_result(data: dict) -> Result:
    return Result("sync-images", [Outcome("deploy1", "sync-images", "changed", "2 copied", data=data)])


def test_the_sync_task_writes_the_lock_of_its_rows_and_says_where(tmp_path, capsys):
    path = tmp_path / DEFAULT_NAME
    result = sync_result({"images": rows()})

    sync_task._write_lock(result, ImageSettings(registry="quay.io"), "r3", str(path), quiet=False)

    lock = read_lock(str(path))
    assert [entry.image for entry in lock.entries] == [KEYSTONE, NOVA] and lock.release == "r3"
    assert f"sync-images: lock {path}: 2 images (1 not locked: failed)" in capsys.readouterr().out
    assert result.extra["lock"] == str(path)


def test_a_lock_that_cannot_be_written_is_a_failed_row_of_its_own(tmp_path):
    # Its folder is a file: even root cannot write there.
    (tmp_path / "site").write_text("")
    path = tmp_path / "site" / DEFAULT_NAME
    result = sync_result({"images": rows()})

    sync_task._write_lock(result, ImageSettings(), "", str(path), quiet=True)

    assert result.failed and result.outcomes[-1].step == "write-lock"
    assert result.outcomes[-1].message.startswith(f"lock not written: {path}: ")
