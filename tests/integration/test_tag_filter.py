"""A tag filter against a real registry: each listed repository's tags asked for (every page), the matching
ones synced, and nothing else."""

from __future__ import annotations

import os

import pytest

from fabfile.actions.sync import SyncImages
from fabfile.actions.tags import UPSTREAM, ListTags
from fabfile.images.model import Image, filtered_repositories, image_list
from fabfile.images.sync_plan import SyncSource
from fabfile.model.inventory import ImageSettings
from fabfile.model.outcome import CHANGED

from .local_run import run_locally
from .registries import Registry, push_image

TAGS = ("2025.1-ubuntu-noble", "2025.1-ubuntu-noble-aarch64", "2024.1-ubuntu-jammy-aarch64", "master-aarch64")

# The local registry read-only, as every instance nodes reach is; the copy goes through the writer.
pytestmark = pytest.mark.usefixtures("writer_host")


def test_only_the_matching_tags_of_each_listed_repository_are_synced(upstream: Registry, local: Registry):
    for repo in ("kolla/keystone", "kolla/nova-api"):
        for tag in TAGS:
            push_image(upstream, repo, tag, [os.urandom(2_000)])
    settings = ImageSettings(
        registry=upstream.base.removeprefix("http://"), insecure=True, namespace="kolla", tag="2025.1",
        services=("keystone", "nova-api"), names=("kolla/glance-api:fixed",), tag_filter="-aarch64$",
    )  # fmt: skip
    push_image(upstream, "kolla/glance-api", "fixed", [os.urandom(2_000)])

    listed, _ = run_locally(ListTags(settings, filtered_repositories(settings), UPSTREAM), local.port)
    [row] = listed.outcomes
    images = image_list(settings, row.data["tags"])

    assert images == [
        Image("kolla/glance-api", "fixed"),  # a name with its own tag stays as it is
        Image("kolla/keystone", "2025.1-ubuntu-noble-aarch64"),
        Image("kolla/nova-api", "2025.1-ubuntu-noble-aarch64"),
    ]
    result, _ = run_locally(SyncImages(images, SyncSource(settings, workers=2, retries=0)), local.port)
    assert result.outcomes[0].status == CHANGED and "3 images: 3 copied" in result.outcomes[0].message
    assert local.manifest_digest("kolla/keystone", "2025.1-ubuntu-noble-aarch64")
    assert not local.manifest_digest("kolla/keystone", "2025.1-ubuntu-noble")
    assert not local.manifest_digest("kolla/keystone", "master-aarch64")
