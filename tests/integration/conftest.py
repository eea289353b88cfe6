"""Two real registries on loopback, "upstream" and "local", new for each test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conftest import docker_registry_binary

from .registries import Registry


@pytest.fixture
def upstream(tmp_path) -> Iterator[Registry]:
    yield from _registry(tmp_path / "upstream")


@pytest.fixture
def local(tmp_path) -> Iterator[Registry]:
    yield from _registry(tmp_path / "local")


def _registry(folder) -> Iterator[Registry]:
    docker_registry_binary()
    registry = Registry.start(folder)
    try:
        yield registry
    finally:
        registry.stop()
