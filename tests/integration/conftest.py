"""Two real registries on loopback, "upstream" and "local", new for each test."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from fabfile.registry import writer
from tests.conftest import docker_registry_binary

from . import docker_stand_in
from .registries import Registry

READ_ONLY = {"REGISTRY_STORAGE_MAINTENANCE_READONLY": '{"enabled":true}'}


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


@pytest.fixture
def writer_host(local, tmp_path, monkeypatch) -> Path:
    """The local registry read-only (as every instance nodes reach is), and the docker stand-in that runs
    the writer (and the collector) on its storage; the stand-in's folder, which logs its calls."""
    # A socket's path has at most 107 bytes.
    sockets = tmp_path.parent / "w"
    monkeypatch.setattr(writer, "WRITER_DIR", str(sockets))
    monkeypatch.setattr(writer, "WRITER_SOCKET", str(sockets / "registry.sock"))
    return writes_go_to(local, tmp_path / "docker", monkeypatch)


def writes_go_to(registry: Registry, folder: Path, monkeypatch) -> Path:
    """``registry`` restarted read-only, and the docker stand-in (logging its calls in ``folder``) made to
    run the writer on its storage from now on; that folder."""
    registry.stop()
    registry.serve(registry.folder / "config.yml", {**os.environ, **READ_ONLY})
    for key, value in docker_stand_in.install(folder, registry.folder / "config.yml", registry.folder / "storage").items():
        monkeypatch.setenv(key, value)
    return folder
