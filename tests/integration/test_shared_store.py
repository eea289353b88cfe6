"""Two real registries on one real S3 store (SeaweedFS), configured by the env file deploy-host writes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from fabfile.model.inventory import RegistrySettings, S3Store
from fabfile.registry.storage import registry_env
from tests.conftest import docker_registry_binary, unavailable
from tests.lab import LabError
from tests.lab.store import weed_binary

from .registries import Registry, push_image
from .store import Store, start_instance


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Iterator[Store]:
    """One store for the module: weed takes seconds to start."""
    docker_registry_binary()
    try:
        weed = weed_binary()
    except LabError as error:
        unavailable(f"no SeaweedFS: {error}")
    running = Store.start(weed, tmp_path_factory.mktemp("store"))
    try:
        yield running
    finally:
        running.stop()


def settings(store: Store, secret: Path) -> RegistrySettings:
    secret.write_text("integration-secret\n")
    return RegistrySettings(
        hostname="kolla-registry.internal", s3=S3Store(store.endpoint, "registry", "us-east-1", "kolla", str(secret))
    )


@pytest.fixture
def instances(store, tmp_path) -> Iterator[tuple[Registry, Registry]]:
    env = registry_env(settings(store, tmp_path / "secret"))
    first = start_instance(tmp_path / "one", env)
    try:
        second = start_instance(tmp_path / "two", env)
    except Exception:
        first.stop()
        raise
    try:
        yield first, second
    finally:
        first.stop()
        second.stop()


def test_an_image_pushed_through_one_instance_pulls_through_the_other(instances):
    one, two = instances
    made = push_image(one, "openstack.kolla/keystone", "2024.1", [b"layer-a" * 1000, b"layer-b" * 2000])
    assert two.manifest_digest("openstack.kolla/keystone", "2024.1") == made.digest
    assert all(two.has("openstack.kolla/keystone", blob) for blob in made.blobs)
    assert two.manifest("openstack.kolla/keystone", made.digest)["layers"][0]["size"] == 7000


def test_a_push_through_the_second_is_seen_by_the_first_and_nothing_lands_on_local_disk(instances, tmp_path):
    one, two = instances
    made = push_image(two, "openstack.kolla/nova-api", "2024.1", [b"nova" * 5000])
    assert one.manifest_digest("openstack.kolla/nova-api", "2024.1") == made.digest
    # The config's filesystem root is never used: the env file's S3 settings win.
    assert not (tmp_path / "one" / "unused").exists() and not (tmp_path / "two" / "unused").exists()


def test_no_instance_on_the_store_runs_the_upload_purger_that_panics_walking_s3(instances):
    # distribution 2.8's purger dies on an S3 walk (index out of range); it starts 0-59 minutes after the
    # registry, so it is its scheduling line, not a crash during the test, that says whether it would run.
    for registry in instances:
        log = (registry.folder / "log").read_text()
        assert "listening on" in log and "upload purge" not in log.lower(), log[-1500:]
