"""The export bundle's store (folder and tar), and this machine as a task's host."""

from __future__ import annotations

import hashlib
import json
import tarfile

import pytest

from fabfile.engine.localrun import LocalRun
from fabfile.images.export import Bundle, put_lock
from fabfile.images.lock import Lock, LockEntry
from fabfile.images.lock_read import read_lock
from fabfile.images.model import Image
from fabfile.model.context import Limits, StepContext
from fabfile.model.errors import RemoteError
from fabfile.model.inventory import HERE, ImageSettings
from fabfile.payload.blobcopy import CopyError
from fabfile.payload.ocistore import FolderLayout, TarLayout, blob_name

from .factories import make_inventory

DATA = b"x" * 3000 + b"y" * 2000
DIGEST = "sha256:" + hashlib.sha256(DATA).hexdigest()


def pieces(data: bytes = DATA, size: int = 700):
    return [data[i : i + size] for i in range(0, len(data), size)]


@pytest.mark.parametrize("kind", [FolderLayout, TarLayout])
def test_a_blob_goes_in_whole_and_is_found_again_by_its_digest(tmp_path, kind):
    path = tmp_path / ("bundle.tar" if kind is TarLayout else "bundle")
    layout = kind(str(path))
    sent = []

    layout.put(DIGEST, len(DATA), pieces(), sent.append)

    assert sum(sent) == len(DATA) and layout.has(DIGEST, len(DATA)) and layout.read(DIGEST) == DATA
    layout.finish({"manifests": []}, {"extra.yaml": b"a: 1\n"})
    layout.close()
    again = kind(str(path))
    assert again.has(DIGEST, len(DATA)) and not again.has(DIGEST, len(DATA) + 1)
    again.close()


@pytest.mark.parametrize("kind", [FolderLayout, TarLayout])
def test_a_blob_whose_bytes_are_not_its_digest_leaves_nothing_behind(tmp_path, kind):
    path = tmp_path / ("bundle.tar" if kind is TarLayout else "bundle")
    layout = kind(str(path))
    layout.put(DIGEST, len(DATA), pieces())
    other = "sha256:" + "0" * 64

    with pytest.raises(CopyError, match="expected sha256:0000"):
        layout.put(other, len(DATA), pieces())

    assert not layout.has(other, len(DATA)) and layout.has(DIGEST, len(DATA))
    layout.finish({"manifests": []}, {})
    layout.close()
    if kind is TarLayout:
        with tarfile.open(path) as tar:
            assert [m.name for m in tar.getmembers()] == [blob_name(DIGEST), "oci-layout", "index.json"]
    else:
        assert sorted(p.name for p in (path / "blobs" / "sha256").iterdir()) == [DIGEST.split(":")[1]]


def test_a_damaged_blob_in_a_folder_is_not_kept(tmp_path):
    layout = FolderLayout(str(tmp_path))
    layout.put(DIGEST, len(DATA), pieces())
    (tmp_path / blob_name(DIGEST)).write_bytes(b"z" + DATA[1:])

    assert not layout.has(DIGEST, len(DATA)) and not (tmp_path / blob_name(DIGEST)).exists()


def test_a_tar_cut_off_mid_member_is_cut_back_to_its_last_whole_member(tmp_path):
    path = tmp_path / "bundle.tar"
    layout = TarLayout(str(path))
    small = b"small blob"
    small_digest = "sha256:" + hashlib.sha256(small).hexdigest()
    layout.put(small_digest, len(small), [small])
    layout.put(DIGEST, len(DATA), pieces())
    layout.close()
    with tarfile.open(path) as tar:
        cut = tar.getmember(blob_name(DIGEST)).offset_data + 100
    with path.open("r+b") as stream:
        stream.truncate(cut)

    resumed = TarLayout(str(path))

    assert resumed.has(small_digest, len(small)) and not resumed.has(DIGEST, len(DATA))
    resumed.put(DIGEST, len(DATA), pieces())
    resumed.close()
    with tarfile.open(path) as tar:
        assert [m.name for m in tar.getmembers()] == [blob_name(small_digest), blob_name(DIGEST)]
        assert tar.extractfile(blob_name(DIGEST)).read() == DATA


def test_a_file_that_is_not_a_tar_is_not_taken_for_a_bundle(tmp_path):
    path = tmp_path / "bundle.tar"
    path.write_text("not a tar at all, and long enough to look for a header in it\n" * 20)

    with pytest.raises(CopyError, match="not a tar"):
        TarLayout(str(path))


@pytest.mark.parametrize("tar", [False, True])
def test_the_lock_goes_into_the_bundle_and_a_later_one_wins(tmp_path, tar):
    path = tmp_path / ("bundle.tar" if tar else "bundle")
    layout = (TarLayout if tar else FolderLayout)(str(path))
    layout.finish({"manifests": []}, {})
    layout.close()
    entry = LockEntry(Image("kolla/keystone", "1"), "quay.io/kolla/keystone:1", DIGEST)

    put_lock(str(path), tar, Lock("quay.io", entries=(entry,), release="r1"))
    put_lock(str(path), tar, Lock("quay.io", entries=(entry,), release="r2"))

    assert read_lock(str(path)).release == "r2"


def test_a_bundle_names_each_image_by_its_upstream_reference_and_its_snapshot_tag():
    image = Image("openstack.kolla/keystone", "T")
    entry = LockEntry(image, f"quay.io/{image.name}", DIGEST, snapshot="T-r1")
    locked = Bundle("/b", False, ImageSettings(), (image,), Lock("quay.io", entries=(entry,), release="r1"))

    assert locked.names(image) == ["quay.io/openstack.kolla/keystone:T", "quay.io/openstack.kolla/keystone:T-r1"]
    assert locked.request_image(image) == {
        "repo": image.path, "tag": "T", "names": locked.names(image), "reference": DIGEST, "expect": DIGEST,
    }
    assert Bundle("/b", False, ImageSettings(), (image,)).request_image(image) == {
        "repo": image.path, "tag": "T", "names": ["quay.io/openstack.kolla/keystone:T"],
    }


def here(timeout: int = 30) -> LocalRun:
    return LocalRun(HERE, StepContext(make_inventory(), limits=Limits(command_timeout=timeout)))


def test_this_machine_runs_a_script_from_stdin_and_sees_each_line(tmp_path):
    seen = []

    output = here().run("echo one; echo two; echo $0 > " + str(tmp_path / "argv"), seen.append)

    assert output == "one\ntwo\n" and seen == ["one", "two"]
    assert (tmp_path / "argv").read_text().strip() == "sh"  # no script on the command line


def test_a_failing_script_here_is_a_remote_error_with_its_last_words():
    with pytest.raises(RemoteError) as caught:
        here().run("echo working; echo 'no space left' >&2; exit 3")

    assert str(caught.value) == "exit 3: no space left" and caught.value.code == 3


def test_a_script_here_that_runs_too_long_is_stopped_with_its_children():
    with pytest.raises(RemoteError, match=r"timed out after 1 s and was stopped") as caught:
        here(timeout=1).run("sleep 30 & sleep 30")

    assert caught.value.code == 124


def test_an_export_uploads_nothing():
    with pytest.raises(RemoteError, match="nothing is uploaded to this machine"):
        here().upload("/etc/hostname", "hostname")


def test_the_export_program_is_one_python_program_that_compiles():
    from fabfile import payload

    source = payload.program(payload.EXPORT, "export_answer")
    compile(source, "export", "exec")
    assert source.index("class FolderLayout") < source.index("class Export")
    assert json.loads(json.dumps({"ok": True}))
