"""Container engines behind one interface (``base.ContainerEngine``): Docker, then Podman.

The order is kolla-ansible's: where a node has both, Docker is the default engine.
"""

from __future__ import annotations

from ..model.facts import HostFacts
from .base import ContainerEngine
from .docker.engine import DOCKER
from .podman.engine import PODMAN

ENGINES: tuple[ContainerEngine, ...] = (DOCKER, PODMAN)
NAMES = tuple(engine.name for engine in ENGINES)


def installed(facts: HostFacts) -> list[ContainerEngine]:
    """The engines this host has, in ``ENGINES`` order."""
    return [engine for engine in ENGINES if engine.installed(facts)]


def described(facts: HostFacts) -> str:
    """The engines and their versions: ``docker 26.1.5``, ``podman 5.4.2``, ``docker 20.10.24+podman 4.3.1``."""
    return "+".join(f"{engine.name} {facts.engine(engine.name).version}" for engine in installed(facts))


def named(name: str) -> ContainerEngine:
    """The engine called ``name`` (one of ``NAMES``)."""
    return next(engine for engine in ENGINES if engine.name == name)


def missing_reason(host: str) -> str:
    """Why a node with no engine at all fails, and the fix."""
    return f"neither Docker nor Podman is installed: run fab -H {host} install-docker, or install podman"
