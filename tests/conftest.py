"""Shared fixtures: the lab of real hosts for e2e tests, and no user SSH config anywhere."""

import os
import shutil
from collections.abc import Iterator

import pytest
from fabric import config as fabric_config

from tests.lab import Lab, LabError, LabUnavailable
from tests.lab.config import suite_targets
from tests.lab.host import ensure_tools
from tests.lab.lock import lab_lock as held_lab_lock

KEEP_ENV = "KOLLA_LAB_KEEP"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "e2e: runs over real SSH against the lab's hosts (python -m tests.lab)"
    )


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("true", "1")


def unavailable(reason: str) -> None:
    """Skip here; in CI a lab that cannot run is a failure, never a skip."""
    if in_ci():
        pytest.fail(f"CI=true and the lab cannot run: {reason}", pytrace=False)
    pytest.skip(f"the lab cannot run here: {reason}")


def needs_root() -> None:
    """Skip where not root (the tool is root on a host); in CI, which runs as root, a failure."""
    if os.geteuid() != 0:
        if in_ci():
            pytest.fail("CI=true and not root: these tests need root, as the tool has on a host", pytrace=False)
        pytest.skip("needs root, as the tool has on a host")


def docker_registry_binary() -> str:
    """Debian's docker-registry (the CNCF registry), installed as the lab installs it when missing;
    in CI its absence fails the test, elsewhere it skips."""
    found = shutil.which("docker-registry")
    if found is None and os.geteuid() == 0:
        try:
            ensure_tools()
        except LabError as error:
            unavailable(str(error))
        found = shutil.which("docker-registry")
    if found is None:
        unavailable("no docker-registry binary: apt-get install docker-registry (as root)")
    return found


@pytest.fixture(scope="session")
def lab(lab_lock: None) -> Iterator[Lab]:
    """deploy1 and node1..nodeN ($KOLLA_LAB_TARGETS, default 5), up once per session.

    Torn down at the end (images kept), unless KOLLA_LAB_KEEP=1.
    """
    try:
        running = Lab.up(suite_targets())
    except LabUnavailable as error:
        unavailable(str(error))
    yield running
    if os.environ.get(KEEP_ENV) != "1":
        running.down()


@pytest.fixture(scope="session")
def lab_lock() -> Iterator[None]:
    """One user of the lab at a time: another test session or a benchmark is waited for, not broken."""
    with held_lab_lock():
        yield


@pytest.fixture(autouse=True)
def no_user_ssh_config(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fabric must not read ~/.ssh/config or /etc/ssh/ssh_config in tests."""
    init = fabric_config.Config.__init__

    def without_ssh_configs(self: fabric_config.Config, *args: object, **kwargs: object) -> None:
        kwargs.setdefault("user_ssh_path", os.devnull)
        kwargs.setdefault("system_ssh_path", os.devnull)
        init(self, *args, **kwargs)

    monkeypatch.setattr(fabric_config.Config, "__init__", without_ssh_configs)
