"""status: every host at once, read-only: reachable, OS, engines, trust, the registry from there."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import asdict

from ..engine.action import Action
from ..engines import ENGINES, installed
from ..facts import system
from ..facts.base import Section, files
from ..images.releases import held_releases
from ..images.wanted import Wanted
from ..kolla.release_pin import pin_path, pinned_release
from ..model.context import StepContext
from ..model.facts import HostFacts
from ..model.inventory import Host, Inventory
from ..registry import facts as registry_facts
from ..registry.api import answer, local_base, query
from ..registry.reach import tls_check
from ..registry.replicas.hosts_file import ETC_HOSTS, current_address
from ..registry.status import host_role, host_status
from ..registry.tls import exposure, tls_sections

STEP = "status"


class Status(Action):
    """One row per host, changing nothing; the task shows them as a table (or JSON)."""

    name = step = STEP
    serving = True
    needs_registry = False
    quiet = True

    def __init__(
        self, inventory: Inventory, globals_path: str, deploy_address: Callable[[], str], wanted: Wanted | None = None
    ) -> None:
        self.inventory = inventory
        # The images each host should hold (the inventory's list, or kolla-ansible's set): counted per host.
        self.wanted = wanted
        self.globals_path = globals_path
        # Asked only when a host maps registry.hostname: the deployment host is not asked up front.
        self.deploy_address = deploy_address
        self._lock = threading.Lock()
        # Each reached host's facts, for the notes that need another host's (globals.yml on the deployment host).
        self.facts_of: dict[str, HostFacts] = {}

    def hosts(self, inventory: Inventory) -> tuple[Host, ...]:
        return inventory.machines

    def sections(self, ctx: StepContext) -> tuple[Section, ...]:
        """The OS, each engine and its config, a secure registry's TLS from there, what kolla-ansible's
        bootstrap-servers would meet (the registry container, globals.yml), and the catalog from there."""
        engines = tuple(section for engine in ENGINES for section in engine.status_sections(ctx))
        reach = (tls_check(ctx, [engine.ca_path(ctx.registry) for engine in ENGINES]),) if _secure(ctx) else ()
        catalog = (query("catalog", ctx, {"catalog": local_base(ctx)}),) if ctx.registry_address else ()
        return (
            system.OS,
            *engines,
            *tls_sections(ctx),
            *reach,
            registry_facts.container(ctx.inventory.registry.name),
            files(self.globals_path, pin_path(self.globals_path)),
            *((files(ETC_HOSTS),) if ctx.inventory.registry.hostname else ()),
            *catalog,
            *(engine.held_images() for engine in ENGINES if self.wanted is not None),
        )

    def data(self, facts: HostFacts, ctx: StepContext) -> dict:
        host = self.inventory.resolve(ctx.host_name)
        registry = ctx.registry if ctx.registry_address else ""
        settings = self.inventory.registry
        row = host_status(
            host,
            host_role(self.inventory, host),
            facts,
            registry,
            answer(facts, "catalog"),
            settings.secure,
            exposure(settings.tls, settings.auth),
        )
        row.zone = host.zone
        row.instance = self.instance_of(facts, host)
        row.images = self.held(facts, ctx, host) if registry and self.wanted is not None else ""
        with self._lock:
            self.facts_of[host.name] = facts
        return asdict(row)

    def held(self, facts: HostFacts, ctx: StepContext, host: Host) -> str:
        """How many of its images the host holds, through its first engine: ``12/15``."""
        wanted = self.wanted.of(host)
        engines = installed(facts)
        if not wanted or not engines:
            return ""
        images = facts.engine(engines[0].name).images
        return f"{sum(1 for image in wanted if image.at(ctx.registry) in images)}/{len(wanted)}"

    def releases(self, registry: str) -> dict[str, str]:
        """Each reached host's releases (``B 30/30 (pinned), A 30/30``): the snapshot tags of its images it holds,
        the cloud's pin (read on the deployment host) first."""
        deploy = self.facts_of.get(self.inventory.deploy_host.name)
        pinned = pinned_release(deploy.files.get(pin_path(self.globals_path))) if deploy else ""
        found = {}
        for name, facts in self.facts_of.items():
            engines = installed(facts)
            if self.wanted is None or not engines or not registry:
                continue
            host = self.inventory.resolve(name)
            found[name] = held_releases(self.wanted.of(host), facts.engine(engines[0].name).images, registry, pinned)
        return found

    def instance_of(self, facts: HostFacts, host: Host | None = None) -> str:
        """The instance this host's /etc/hosts maps registry.hostname to ("" without one, or an unknown address);
        ``(zone b, fallback)`` when it is outside the host's own zone."""
        hostname = self.inventory.registry.hostname
        mapped = current_address(facts.files.get(ETC_HOSTS), hostname) if hostname else ""
        if not mapped:
            return ""
        deploy = self.inventory.deploy_host
        known = {self.deploy_address(): (deploy.name, deploy.zone)}
        known.update({replica.address: (replica.name, replica.zone) for replica in self.inventory.registry.replicas})
        if mapped not in known:
            return f"{mapped} (not an instance)"
        name, zone = known[mapped]
        if host is not None and host.zone and zone != host.zone:
            return f"{name} (zone {zone or 'none'}, fallback)"
        return name


def _secure(ctx: StepContext) -> bool:
    return ctx.inventory.registry.secure and bool(ctx.registry_address)
