"""Facts: what one host has, as far as the tasks care, split by concern.

Gathered in one round trip (``fabfile.facts``): each section's shell prints a
part, its parser fills one of these. Planners read them and nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class SystemFacts:
    """The operating system: release, kernel, addresses and names, packages, Python, /run's propagation."""

    os: dict[str, str] = field(default_factory=dict)
    kernel: str = ""
    addresses: list[str] = field(default_factory=list)
    names: list[str] = field(default_factory=list)
    externally_managed: bool = False
    pip_version: str = ""
    packages: set[str] = field(default_factory=set)
    apt_lists_age: int = 0
    run_propagation: str = ""

    @property
    def os_name(self) -> str:
        return self.os.get("PRETTY_NAME") or self.os.get("ID", "unknown OS")


@dataclass
class EngineFacts:
    """One container engine: its version ("" when not installed), its daemon and service, its checks."""

    version: str = ""
    # Whether its daemon answers (an engine without a daemon: never).
    answers: bool = False
    # Its systemd service's properties (ExecStart, EnvironmentFiles, MainPID, ActiveState, FragmentPath).
    service: dict[str, str] = field(default_factory=dict)
    # The pull check run in the facts session: (exit status, output); None when not run.
    checked: tuple[int, str] | None = None
    # The images it holds of those asked for: reference -> its repository digests.
    images: dict[str, list[str]] = field(default_factory=dict)
    # Images resolved from the registry through it, nothing downloaded: reference -> (HTTP-like
    # status, the digest when found, else what the registry or the engine said).
    resolved: dict[str, tuple[int, str]] = field(default_factory=dict)
    # The daemon's own view of its registries (Docker's RegistryConfig: InsecureRegistryCIDRs,
    # IndexConfigs); empty when not asked for or it did not answer.
    registry_config: dict = field(default_factory=dict)


@dataclass
class RegistryFacts:
    """The registry on a registry host: its container, its image, its server certificate."""

    container: dict | None = None
    image_id: str = ""
    # A secure registry's certificate: keys present, days left, names (sans), signed, fingerprint.
    tls: dict = field(default_factory=dict)


@dataclass
class ReachFacts:
    """What this host sees of the registry: TLS verified from here, each instance's health, queries' answers."""

    tls: str = ""
    instances: dict[str, bool] = field(default_factory=dict)
    # Registry API answers asked from this host (catalog, manifests, scan), by query name.
    answers: dict[str, dict] = field(default_factory=dict)


@dataclass
class HostFacts:
    """Everything gathered from one host."""

    system: SystemFacts = field(default_factory=SystemFacts)
    files: dict[str, str] = field(default_factory=dict)
    unreadable: dict[str, str] = field(default_factory=dict)
    engines: dict[str, EngineFacts] = field(default_factory=dict)
    registry: RegistryFacts = field(default_factory=RegistryFacts)
    reach: ReachFacts = field(default_factory=ReachFacts)

    def engine(self, name: str) -> EngineFacts:
        """The facts of engine ``name`` (empty when it was not asked for or is not there)."""
        return self.engines.setdefault(name, EngineFacts())

