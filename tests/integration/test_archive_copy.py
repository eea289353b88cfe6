"""Archives into a real registry with no docker load: docker save tars of both layouts and OCI layouts."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import tarfile
from pathlib import Path

import pytest

from fabfile.actions.sync import SyncImages
from fabfile.images import archive
from fabfile.images.model import image_list
from fabfile.images.sync_plan import SyncSource
from fabfile.model.inventory import ImageSettings

from .local_run import run_locally
from .registries import Registry
from .test_blob_copy import copy

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def layer_tar(name: str) -> bytes:
    """An uncompressed layer tar holding one random file, as docker save keeps layers."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as layer:
        data = os.urandom(100_000)
        info = tarfile.TarInfo(name)
        info.size = len(data)
        layer.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def write(files: dict[str, bytes], path: Path, links: dict[str, str] | None = None) -> Path:
    """A tar of ``files`` and symbolic ``links`` (a folder of files when ``path`` has no suffix)."""
    if not path.suffix:
        for name, data in files.items():
            (path / name).parent.mkdir(parents=True, exist_ok=True)
            (path / name).write_bytes(data)
        return path
    with tarfile.open(path, "w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type, info.linkname = tarfile.SYMTYPE, target
            tar.addfile(info)
    return path


def config_of(layers: list[bytes]) -> bytes:
    diff_ids = ["sha256:" + sha(layer) for layer in layers]
    return json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": diff_ids}}).encode()


def docker_save(base: bytes) -> tuple[dict[str, bytes], dict]:
    """Docker < 25: <id>/layer.tar, <config hex>.json, manifest.json; two images sharing ``base``."""
    files, configs = {}, {}
    for name in ("keystone", "nova-api"):
        layers = [base, layer_tar(name)]
        config = config_of(layers)
        files[f"{sha(config)}.json"] = config
        for layer in layers:
            files[f"{sha(layer)[:12]}/layer.tar"] = layer
        configs[name] = {"Config": f"{sha(config)}.json", "RepoTags": [f"quay.io/kolla/{name}:1"],
                         "Layers": [f"{sha(layer)[:12]}/layer.tar" for layer in layers]}
    files["manifest.json"] = json.dumps(list(configs.values())).encode()
    return files, {name: "sha256:" + entry["Config"][:-5] for name, entry in configs.items()}


def oci_layout(base: bytes, with_docker_manifest: bool) -> tuple[dict[str, bytes], dict]:
    """An OCI layout (Docker >= 25 adds manifest.json): blobs/sha256/*, index.json naming the images."""
    files, entries, saved, digests = {"oci-layout": b'{"imageLayoutVersion": "1.0.0"}'}, [], [], {}
    for name in ("keystone", "nova-api"):
        layers = [base, layer_tar(name)]
        config = config_of(layers)
        descriptors = [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "size": len(layer),
                        "digest": "sha256:" + sha(layer)} for layer in layers]
        manifest = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "layers": descriptors,
                               "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                                          "size": len(config), "digest": "sha256:" + sha(config)}}).encode()
        for blob in (*layers, config, manifest):
            files[f"blobs/sha256/{sha(blob)}"] = blob
        annotations = {"io.containerd.image.name": f"quay.io/kolla/{name}:1", "org.opencontainers.image.ref.name": "1"}
        entries.append({"mediaType": OCI_MANIFEST, "digest": "sha256:" + sha(manifest), "size": len(manifest),
                        "annotations": annotations})
        saved.append({"Config": f"blobs/sha256/{sha(config)}", "RepoTags": [f"kolla/{name}:1"],
                      "Layers": [f"blobs/sha256/{sha(layer)}" for layer in layers]})
        digests[name] = "sha256:" + sha(manifest)
    files["index.json"] = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries}).encode()
    if with_docker_manifest:
        files["manifest.json"] = json.dumps(saved).encode()
    return files, digests


def sync_archive(path: Path, local: Registry) -> dict:
    """sync-images from the archive at ``path`` through the engine: read here, uploaded (a folder as a
    tar stream), pushed from the tar by the program on the host; the copy's row data."""
    settings = ImageSettings(names=("kolla/keystone:1", "kolla/nova-api:1"))
    source = SyncSource(settings, str(path), archive.read_archive(str(path)), workers=4, retries=0)
    result, _ = run_locally(SyncImages(image_list(settings), source), local.port)
    row = result.outcomes[0]
    assert [image["status"] for image in row.data["images"]] == ["copied", "copied"], row
    return row.data


@pytest.mark.parametrize("linked", [False, True], ids=["docker-save", "docker-1.x-linked-layer"])
@pytest.mark.usefixtures("writer_host")  # read-only registry, the copy through the writer
def test_a_docker_save_tar_is_pushed_as_uncompressed_layers_under_a_schema2_manifest(local, tmp_path, linked):
    base = layer_tar("base")
    files, configs = docker_save(base)
    links = {}
    if linked:
        # Docker 1.x: the second image's copy of a shared layer is a link to the first one's.
        manifest = json.loads(files["manifest.json"])
        manifest[1]["Layers"][0] = "other/layer.tar"
        files["manifest.json"] = json.dumps(manifest).encode()
        links["other/layer.tar"] = f"../{manifest[0]['Layers'][0]}"

    answer = sync_archive(write(files, tmp_path / "saved.tar", links), local)

    for name, config in configs.items():
        manifest = local.manifest(f"kolla/{name}", "1")
        assert manifest["mediaType"] == "application/vnd.docker.distribution.manifest.v2+json"
        assert manifest["config"]["digest"] == config
        assert {layer["mediaType"] for layer in manifest["layers"]} == {archive.DOCKER_TAR_LAYER}
        assert manifest["layers"][0]["digest"] == "sha256:" + sha(base)
    # The shared base layer went up once and was mounted into the second repository.
    assert (answer["fetched"], answer["mounted"]) == (5, 1)


@pytest.mark.parametrize("kind", ["docker-25.tar", "oci.tar", "oci-folder"])
@pytest.mark.usefixtures("writer_host")  # read-only registry, the copy through the writer
def test_an_oci_layout_is_pushed_as_it_is(local, tmp_path, kind):
    files, digests = oci_layout(layer_tar("base"), with_docker_manifest=kind == "docker-25.tar")
    where = tmp_path / kind.replace("-folder", "")
    if not where.suffix:
        where.mkdir()

    sync_archive(write(files, where), local)

    for name, digest in digests.items():
        assert local.manifest_digest(f"kolla/{name}", "1") == digest


def test_a_docker_save_layer_that_is_not_its_diff_id_fails_the_image(local, tmp_path):
    files, _ = docker_save(layer_tar("base"))
    entry = json.loads(files["manifest.json"])[0]
    files[entry["Layers"][1]] = layer_tar("tampered")
    path = write(files, tmp_path / "saved.tar")
    index = archive.read_archive(str(path))
    spec = archive.copy_spec(archive.Layout(str(path)), index["quay.io/kolla/keystone:1"], "1", [])

    answer, _ = copy({"copy": {"target": local.base, "archive": str(path), "retries": 0,
                               "images": [{"repo": "kolla/keystone", "tag": "1", **spec}]}})

    assert answer["images"][0]["status"] == "failed" and "sha256" in answer["images"][0]["error"]
    assert not local.manifest_digest("kolla/keystone", "1")


@pytest.mark.usefixtures("writer_host")  # read-only registry, the copy through the writer
def test_a_gzipped_docker_save_tar_is_uncompressed_once_on_the_host(local, tmp_path):
    files, configs = docker_save(layer_tar("base"))
    path = write(files, tmp_path / "saved.tar")
    with open(path, "rb") as plain, gzip.open(tmp_path / "saved.tar.gz", "wb") as packed:
        packed.write(plain.read())

    sync_archive(tmp_path / "saved.tar.gz", local)

    assert local.manifest("kolla/keystone", "1")["config"]["digest"] == configs["keystone"]
