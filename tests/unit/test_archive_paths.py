"""An archive's names stay inside it: a digest is sha256 and 64 hex digits, and a folder's files are its own.

An OCI layout names its blobs by digest (``blobs/sha256/HEX``): a digest such as
``sha256:../../.docker/config.json`` or a link out of the folder would make this
machine read an operator's file and send it to the deployment host as a manifest.
"""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
from pathlib import Path

import pytest

from fabfile.images import archive
from fabfile.images.model import Image
from fabfile.images.sync_plan import SyncSource, sync_planner
from fabfile.model.inventory import ImageSettings

from .factories import changed, docker_host, make_ctx

SECRET = '{"auths": {"quay.io": {"auth": "b3JnK3JvYm90OnMzY3JldA=="}}}'
IMAGE = Image("openstack.kolla/keystone", "2024.1")
HEX = "ab" * 32


def home_with_a_docker_login(tmp_path: Path) -> Path:
    """A home folder holding ~/.docker/config.json (a login) and the layout folder ~/layout."""
    (tmp_path / ".docker").mkdir()
    (tmp_path / ".docker" / "config.json").write_text(SECRET)
    (tmp_path / "layout" / "blobs" / "sha256").mkdir(parents=True)
    return tmp_path / "layout"


def index_naming(layout: Path, digest: str) -> None:
    descriptor = {
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": digest,
        "size": 100,
        "annotations": {"io.containerd.image.name": f"quay.io/{IMAGE.name}"},
    }
    (layout / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    (layout / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [descriptor]}))


def read_leaks(path: Path) -> str:
    """What sync-images would send to the deployment host for the image: its copy job's request."""
    index = archive.read_archive(str(path))
    source = SyncSource(ImageSettings(tag="2024.1", services=("keystone",)), str(path), index)
    facts = changed(docker_host(), answers={"manifests": {"manifests": [{"status": 404, "error": "HTTP 404"}]}})
    plan = sync_planner([IMAGE], source)(facts, make_ctx())
    return "".join(job.script for job in plan.jobs)


@pytest.mark.parametrize(
    "digest",
    ["sha256:../../.docker/config.json", "sha256:../../../.docker/config.json", "sha256:" + "AB" * 32, "md5:" + HEX],
)
def test_a_layout_digest_that_is_not_sha256_hex_is_refused_naming_it(tmp_path, digest):
    layout = home_with_a_docker_login(tmp_path)
    (layout / ".docker").mkdir()
    (layout / ".docker" / "config.json").write_text(SECRET)  # what sha256:../../ reaches from blobs/sha256/
    index_naming(layout, digest)

    with pytest.raises(archive.ArchiveError, match=r"is not a sha256 digest") as refused:
        read_leaks(layout)
    assert str(refused.value).startswith(f"{layout}: ")


def test_a_link_out_of_the_layout_folder_is_not_read(tmp_path):
    layout = home_with_a_docker_login(tmp_path)
    (layout / "blobs" / "sha256" / HEX).symlink_to(tmp_path / ".docker" / "config.json")
    index_naming(layout, "sha256:" + HEX)

    with pytest.raises(archive.ArchiveError, match=f"blobs/sha256/{HEX}: not a file of {layout}"):
        read_leaks(layout)


def test_a_link_inside_the_folder_is_read(tmp_path):
    layout = home_with_a_docker_login(tmp_path)
    (layout / "elsewhere.json").write_text('{"schemaVersion": 2, "config": {"digest": "sha256:' + "c" * 64 + '"}}')
    (layout / "blobs" / "sha256" / HEX).symlink_to(layout / "elsewhere.json")
    index_naming(layout, "sha256:" + HEX)

    assert archive.read_archive(str(layout))[f"quay.io/{IMAGE.name}"].config == "sha256:" + "c" * 64


def test_a_docker_save_folder_s_config_is_read_from_the_folder_only(tmp_path):
    layout = home_with_a_docker_login(tmp_path)
    saved = [{"Config": "../.docker/config.json", "RepoTags": [f"quay.io/{IMAGE.name}"], "Layers": []}]
    (layout / "manifest.json").write_text(json.dumps(saved))

    index = archive.read_archive(str(layout))
    with pytest.raises(archive.ArchiveError, match=r"\.\./\.docker/config\.json: not a file of"):
        archive.copy_spec(archive.Layout(str(layout)), index[f"quay.io/{IMAGE.name}"], "2024.1", [])
    # And the sync: the image fails, the login is nowhere in what goes to the host.
    script = read_leaks(layout)
    assert SECRET not in script and base64.b64encode(SECRET.encode()).decode() not in script


def test_a_docker_save_layer_digest_must_be_sha256_hex(tmp_path):
    folder = tmp_path / "saved"
    folder.mkdir()
    (folder / "layer.tar").write_bytes(b"x" * 10)
    (folder / "ff.json").write_text(json.dumps({"rootfs": {"diff_ids": ["sha256:../../etc/shadow"]}}))
    saved = [{"Config": "ff.json", "RepoTags": [f"quay.io/{IMAGE.name}"], "Layers": ["layer.tar"]}]
    (folder / "manifest.json").write_text(json.dumps(saved))
    subprocess.run(["tar", "-C", str(folder), "-cf", str(tmp_path / "a.tar"), "."], check=True)

    index = archive.read_archive(str(tmp_path / "a.tar"))
    with pytest.raises(archive.ArchiveError, match="'sha256:../../etc/shadow' is not a sha256 digest"):
        archive.copy_spec(archive.Layout(str(tmp_path / "a.tar")), index[f"quay.io/{IMAGE.name}"], "2024.1", [])


def test_the_digest_an_export_s_wrapper_names_is_checked_too(tmp_path):
    layout = home_with_a_docker_login(tmp_path)
    (layout / ".docker").mkdir()
    (layout / ".docker" / "config.json").write_text(SECRET)
    index_naming(layout, "sha256:" + HEX)
    index = json.loads((layout / "index.json").read_text())
    index["manifests"][0]["annotations"][archive.WRAPS] = "sha256:../../.docker/config.json"
    (layout / "index.json").write_text(json.dumps(index))

    with pytest.raises(archive.ArchiveError, match=r"is not a sha256 digest"):
        read_leaks(layout)


def test_an_export_s_wrapper_stands_for_the_manifest_it_wraps(tmp_path):
    layout = home_with_a_docker_login(tmp_path)
    docker = {"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
              "config": {"digest": "sha256:" + "c" * 64, "size": 5}, "layers": [{"digest": "sha256:" + "d" * 64, "size": 7}]}  # fmt: skip
    body = json.dumps(docker).encode()
    wrapped = "sha256:" + hashlib.sha256(body).hexdigest()
    (layout / "blobs" / "sha256" / wrapped.removeprefix("sha256:")).write_bytes(body)
    (layout / "blobs" / "sha256" / HEX).write_text(json.dumps({"schemaVersion": 2, "manifests": [{"digest": wrapped}]}))
    index_naming(layout, "sha256:" + HEX)
    index = json.loads((layout / "index.json").read_text())
    index["manifests"][0].update(mediaType="application/vnd.oci.image.index.v1+json")
    index["manifests"][0]["annotations"][archive.WRAPS] = wrapped
    (layout / "index.json").write_text(json.dumps(index))

    found = archive.read_archive(str(layout))[f"quay.io/{IMAGE.name}"]

    assert json.loads(found.descriptor) == {
        "mediaType": docker["mediaType"], "digest": wrapped, "size": len(body),
        "annotations": {"io.containerd.image.name": f"quay.io/{IMAGE.name}"},
    }  # fmt: skip
    assert (found.config, found.size) == ("sha256:" + "c" * 64, 5 + 7)
    spec = archive.copy_spec(archive.Layout(str(layout)), found, "2024.1", [])
    assert spec["manifests"] == [["2024.1", docker["mediaType"], base64.b64encode(body).decode()]]
