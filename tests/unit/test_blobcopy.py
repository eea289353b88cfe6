"""The copy helper's pure parts: platforms, manifests, the blob plan; and images.platforms in the inventory."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from fabfile import inventory as inv
from fabfile import payload
from fabfile.model.inventory import InventoryError
from fabfile.payload import blobcopy

A, B, C = ("sha256:" + letter * 64 for letter in "abc")
INDEX = {
    "schemaVersion": 2,
    "mediaType": "application/vnd.oci.image.index.v1+json",
    "manifests": [
        {"digest": A, "platform": {"os": "linux", "architecture": "amd64"}},
        {"digest": B, "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"}},
        {"digest": C, "platform": {"os": "unknown", "architecture": "unknown"}},
    ],
}


@pytest.mark.parametrize(
    "text, platform",
    [
        ("linux/amd64", {"os": "linux", "architecture": "amd64"}),
        ("linux/arm64/v8", {"os": "linux", "architecture": "arm64", "variant": "v8"}),
    ],
)
def test_parse_platform(text, platform):
    assert blobcopy.parse_platform(text) == platform


def test_no_platforms_keeps_the_index_as_it_is():
    assert blobcopy.select_platforms(INDEX, []) is INDEX


@pytest.mark.parametrize(
    "platforms, kept",
    [
        (["linux/amd64"], [A]),
        (["linux/arm64"], [B]),
        (["linux/arm64/v8", "linux/amd64"], [A, B]),
        (["linux/arm64/v7"], None),
        (["linux/s390x"], None),
    ],
)
def test_platforms_make_a_new_index_of_those_named(platforms, kept):
    selected = blobcopy.select_platforms(INDEX, platforms)

    if kept is None:
        assert selected is None
    else:
        assert [entry["digest"] for entry in selected["manifests"]] == kept
        assert selected["mediaType"] == INDEX["mediaType"] and len(INDEX["manifests"]) == 3


def test_an_index_keeps_only_what_an_archive_holds():
    assert [e["digest"] for e in blobcopy.select_platforms(INDEX, [], present={B})["manifests"]] == [B]


def test_blob_descriptors_are_the_config_then_the_layers_without_foreign_ones():
    manifest = {
        "config": {"digest": A, "size": 1},
        "layers": [{"digest": B, "size": 2}, {"digest": C, "size": 3, "urls": ["https://windows"]}],
    }

    assert [d["digest"] for d in blobcopy.blob_descriptors(manifest)] == [A, B]


@pytest.mark.parametrize(
    "document, media_type, expected",
    [
        ({"mediaType": "application/vnd.docker.distribution.manifest.v2+json"}, "", "docker"),
        ({"manifests": []}, "", "index"),
        ({"layers": []}, "application/vnd.docker.distribution.manifest.v2+json", "docker"),
        ({"layers": []}, "text/plain", "oci"),
    ],
)
def test_media_type_of(document, media_type, expected):
    found = blobcopy.media_type_of(document, media_type)

    assert {"docker": "docker.distribution.manifest.v2", "index": "oci.image.index", "oci": "oci.image.manifest"}[
        expected
    ] in found


def test_the_plan_fetches_each_blob_once_and_mounts_it_elsewhere():
    needs = {A: ["kolla/keystone", "kolla/nova", "kolla/glance"], B: ["kolla/nova"], C: ["kolla/keystone", "kolla/nova"]}
    present = {("kolla/nova", C), ("kolla/keystone", C)}

    assert blobcopy.plan_blobs(needs, present) == [
        ("fetch", A, "kolla/keystone", ["kolla/nova", "kolla/glance"]),
        ("fetch", B, "kolla/nova", []),
    ]


def test_the_plan_mounts_a_blob_the_registry_holds_in_another_repository():
    needs = {A: ["kolla/keystone", "kolla/nova"], B: ["kolla/nova"]}

    assert blobcopy.plan_blobs(needs, {("kolla/nova", A)}) == [
        ("fetch", B, "kolla/nova", []),
        ("mount", A, "kolla/nova", ["kolla/keystone"]),
    ]


def test_a_blob_everywhere_already_is_not_in_the_plan():
    assert blobcopy.plan_blobs({A: ["kolla/a"]}, {("kolla/a", A)}) == []


def test_the_program_sent_to_the_host_has_no_relative_import_and_one_entry():
    source = payload.program(payload.COPY, "copy_answer")

    assert "from ." not in source and source.count('if __name__ == "__main__":') == 1
    assert source.rstrip().endswith("print(json.dumps(copy_answer(json.loads(base64.b64decode(REQUEST).decode()))), flush=True)")
    compile(source, "helper", "exec")


BASE = {"deploy_host": {"name": "d", "address": "192.0.2.10"}, "images": {"tag": "2024.1", "services": ["keystone"]}}


@pytest.mark.parametrize("platforms", [["linux/amd64"], ["linux/arm64/v8", "linux/amd64"]])
def test_images_platforms_are_read(platforms):
    data = {**BASE, "images": {**BASE["images"], "platforms": platforms}}

    assert inv.parse(yaml.safe_dump(data), Path("/srv/hosts.yaml")).images.platforms == tuple(platforms)


@pytest.mark.parametrize("value", [["amd64"], ["linux/AMD64"], "linux/amd64", [["linux/amd64"]]])
def test_images_platforms_that_are_not_platforms_are_refused(value):
    data = {**BASE, "images": {**BASE["images"], "platforms": value}}

    with pytest.raises(InventoryError, match=r"images\.platforms"):
        inv.parse(yaml.safe_dump(data), Path("/srv/hosts.yaml"))
