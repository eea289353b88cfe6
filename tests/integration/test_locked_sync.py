"""Locks, locked syncs and snapshot tags between real registries: the real action through the real engine."""

from __future__ import annotations

import os

import pytest

from fabfile.actions.sync import SyncImages
from fabfile.images.lock import lock_from_rows
from fabfile.images.model import image_list
from fabfile.images.sync_plan import SyncSource
from fabfile.model.inventory import ImageSettings
from fabfile.model.outcome import CHANGED, FAILED, OK
from fabfile.payload.registry_client import Client

from .conftest import writes_go_to
from .local_run import run_locally
from .registries import Registry, push_image, push_index

NAMES = ("kolla/keystone:1", "kolla/nova-api:1")

# The local registry read-only, as every instance nodes reach is; the copy goes through the writer.
pytestmark = pytest.mark.usefixtures("writer_host")


@pytest.fixture
def second(tmp_path):
    """A second, empty site registry (read-only too once ``into_second`` makes the writer write to it)."""
    registry = Registry.start(tmp_path / "second")
    yield registry
    registry.stop()


@pytest.fixture
def into_second(second, tmp_path, monkeypatch):
    """Call it, and the syncs that follow write to the second site's storage through the writer."""
    return lambda: writes_go_to(second, tmp_path / "docker-second", monkeypatch)


def settings_of(upstream: Registry, names=NAMES, **more) -> ImageSettings:
    return ImageSettings(registry=upstream.base.removeprefix("http://"), insecure=True, names=names, **more)


def sync(settings: ImageSettings, local: Registry, **source):
    """One sync-images run into ``local``; its row."""
    images = source.pop("images", None) or image_list(settings)
    action = SyncImages(images, SyncSource(settings, workers=4, retries=0, **source))
    result, _ = run_locally(action, local.port)
    return result.outcomes[0]


def lock_of(row, settings: ImageSettings, release: str = ""):
    return lock_from_rows(row.data["images"], settings.registry, True, settings.platforms, release, "2025-06-01T12:00:00Z")


def release(upstream: Registry, tag: str = "1") -> dict:
    """Each name's image pushed upstream anew under ``tag``: the upstream's tag moves."""
    return {name: push_image(upstream, name.split(":")[0], tag, [os.urandom(30_000)]) for name in NAMES}


def delete_manifest(registry: Registry, repo: str, digest: str) -> None:
    status, _, _ = Client().request("DELETE", f"{registry.base}/v2/{repo}/manifests/{digest}", repository=repo)
    assert status == 202


def test_a_release_tags_every_image_and_the_next_release_leaves_it_as_it_was(upstream, local):
    settings = settings_of(upstream)
    first = release(upstream)

    row_a = sync(settings, local, release="A")

    assert row_a.status == CHANGED and "2 images: 2 copied" in row_a.message, row_a
    for name, made in first.items():
        repo = name.split(":")[0]
        assert local.manifest_digest(repo, "1") == local.manifest_digest(repo, "1-A") == made.digest
    lock = lock_of(row_a, settings, "A")
    assert [(e.image.name, e.digest, e.snapshot, e.platforms) for e in lock.entries] == [
        (name, first[name].digest, "1-A", ("linux/amd64",)) for name in NAMES
    ]

    second_release = release(upstream)
    row_b = sync(settings, local, release="B")

    assert row_b.status == CHANGED and "2 copied" in row_b.message, row_b
    for name in NAMES:
        repo = name.split(":")[0]
        assert local.manifest_digest(repo, "1") == local.manifest_digest(repo, "1-B") == second_release[name].digest
        assert local.manifest_digest(repo, "1-A") == first[name].digest  # A is still A


def test_an_image_already_there_only_gets_its_snapshot_tag(upstream, local):
    settings = settings_of(upstream)
    release(upstream)
    sync(settings, local)

    row = sync(settings, local, release="C")

    assert row.status == CHANGED and "2 images: 2 tagged" in row.message, row
    assert row.data["fetched"] == row.data["bytes"] == 0
    for name in NAMES:
        repo = name.split(":")[0]
        assert local.manifest_digest(repo, "1-C") == local.manifest_digest(repo, "1")
    again = sync(settings, local, release="C")
    assert again.status == OK and "2 present" in again.message


def test_a_release_tag_is_never_moved_the_sync_is_refused_naming_it(upstream, local):
    settings = settings_of(upstream)
    release(upstream)
    sync(settings, local, release="A")
    before = {name: local.manifest_digest(name.split(":")[0], "1") for name in NAMES}
    release(upstream)  # the upstream's tag moved: release A again would move its snapshot tags

    row = sync(settings, local, release="A")

    assert row.status == FAILED
    assert row.message.startswith("release A: refused, a release's snapshot tag is never moved: ")
    assert "kolla/keystone:1-A already names sha256:" in row.message and "kolla/nova-api:1-A" in row.message
    # Nothing was copied: not even the plain tag moved.
    assert {name: local.manifest_digest(name.split(":")[0], "1") for name in NAMES} == before


def test_a_locked_sync_copies_the_locked_digests_not_the_newer_images_under_the_same_tags(upstream, local, second, into_second):
    settings = settings_of(upstream)
    first = release(upstream)
    lock = lock_of(sync(settings, local, release="A"), settings, "A")
    release(upstream)  # newer images under the same tags
    into_second()

    row = sync(settings, second, lock=lock, images=lock.images, release=lock.release)

    assert row.status == CHANGED and "2 copied" in row.message, row
    for name, made in first.items():
        repo = name.split(":")[0]
        assert second.manifest_digest(repo, "1") == second.manifest_digest(repo, "1-A") == made.digest
    assert sync(settings, second, lock=lock, images=lock.images).status == OK


def test_a_locked_sync_names_every_image_whose_digest_upstream_no_longer_has(upstream, local, second, into_second):
    settings = settings_of(upstream)
    first = release(upstream)
    lock = lock_of(sync(settings, local), settings)
    release(upstream)
    for name, made in first.items():
        delete_manifest(upstream, name.split(":")[0], made.digest)
    into_second()

    row = sync(settings, second, lock=lock, images=lock.images)

    assert row.status == FAILED
    assert row.message.endswith("locked digests no longer upstream: kolla/keystone:1, kolla/nova-api:1"), row.message
    assert not second.manifest_digest("kolla/keystone", "1")


def test_a_lock_with_platforms_chosen_gives_the_same_index_digest_again(upstream, local, second, into_second):
    index, _ = push_index(upstream, "kolla/multi", "1", {"amd64": [os.urandom(20_000)], "arm64": [os.urandom(20_000)]})
    settings = settings_of(upstream, names=("kolla/multi:1",), platforms=("linux/arm64",))
    row = sync(settings, local)
    lock = lock_of(row, settings)
    [entry] = lock.entries
    assert entry.upstream_digest == index.digest != entry.digest and entry.platforms == ("linux/arm64",)
    into_second()

    again = sync(settings_of(upstream, names=("kolla/multi:1",)), second, lock=lock, images=lock.images)

    assert again.status == CHANGED, again
    assert second.manifest_digest("kolla/multi", "1") == local.manifest_digest("kolla/multi", "1") == entry.digest
