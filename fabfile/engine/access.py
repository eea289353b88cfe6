"""Learning the registry's access once per run, however many hosts ask (see ``registry.access``).

From the deployment host's own facts where the run has them (also when it is
listed as a target), else by asking it once over SSH: so every host agrees.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from fabric import Config

from ..facts import base as facts_base
from ..model.context import Served
from ..model.errors import AddressUnknown
from ..model.facts import HostFacts
from ..model.inventory import Host, Inventory
from ..registry import access as rules
from ..registry.access import Access, Instance
from ..registry.replica_tls import served_from_facts, served_sections
from ..transport.connection import connect, execute, run_as_root, unreachable_reason

# How long a host waits for the deployment host's connection to open before opening its own (see head_start).
HEAD_START_SECONDS = 1.0


class RegistryAccess:
    """The registry's ``Access`` for one run: learnt once, from facts where it can."""

    def __init__(self, inventory: Inventory, config: Config | None = None, serving: bool = False) -> None:
        self.inventory = inventory
        self.config = config
        # A task about the instances themselves (deploy-host, sync, prune, status): each registry
        # host uses its own; else hosts use the registry's name (registry.hostname) when there is one.
        self.serving = serving
        self._lock = threading.Lock()
        self._access = Access(inventory.registry.known_address)
        self._error = ""
        self._asked = not rules.needs_deploy_host(inventory)
        # Set while no lookup is on its way to the deployment host, or once its connection is open.
        self._connected = threading.Event()
        self._connected.set()
        # Another session's facts of the deployment host, to learn from instead of asking it again.
        self._gathered: Callable[[], HostFacts] | None = None

    def from_facts(self, host: Host) -> bool:
        """Whether ``host``'s own facts tell it: it is the deployment host (or a target that is it)."""
        return rules.needs_deploy_host(self.inventory) and self.inventory.is_deploy_host(host)

    def learnt(self, facts: HostFacts) -> Access:
        """The access from the deployment host's facts (gathered with ``registry.access.SECTIONS``)."""
        with self._lock:
            self._access = rules.from_facts(self.inventory, facts)
            self._asked, self._error = True, ""
            return self._access

    def start(self) -> None:
        """Ask the deployment host in the background, so that hosts connecting meanwhile need not wait."""
        if not self._asked:
            self._connected.clear()
        threading.Thread(target=self._look_up_in_background, daemon=True).start()

    def _look_up_in_background(self) -> None:
        try:
            self.known_or_empty()
        finally:
            self._connected.set()

    def follow(self, gathered: Callable[[], HostFacts]) -> None:
        """Learn from another session on the deployment host instead of a connection of its own: ``gathered``
        gives that session's facts (with ``registry.access.SECTIONS``) or raises what kept it from answering."""
        self._gathered = gathered

    def head_start(self) -> None:
        """Wait, briefly, until the background lookup's connection is open.

        Every host's facts wait for what the deployment host tells; its handshake, one among twenty
        or a hundred on the controller's one interpreter (the GIL), used to finish with the last of
        theirs and hold every host's script until then.
        """
        self._connected.wait(HEAD_START_SECONDS)

    def known_or_empty(self) -> Access:
        try:
            return self.lookup()
        except AddressUnknown:
            return self._access

    def lookup(self) -> Access:
        """The access; asks the deployment host (once per run) when the inventory does not tell it all."""
        with self._lock:
            if not self._asked:
                self._asked = True
                self._error = self._ask(self.inventory.deploy_host) if self._gathered is None else self._take()
            if self._error:
                raise AddressUnknown(self._error)
            return self._access

    def seen_from(self, host: Host, access: Access) -> Access:
        return rules.seen_from(self.inventory, host, access, self.serving)

    def instances(self) -> tuple[Instance, ...]:
        """Every instance, the deployment host's first (asks it for its address when needed)."""
        return rules.instances(self.inventory, self.lookup().address)

    def served(self) -> dict[str, Served]:
        """What each replica of a secure registry serves with (its certificate and key, the login file),
        read as root from the deployment host once its own run made them; each says why when it could not be."""
        inventory = self.inventory
        if not (inventory.registry.secure and inventory.registry.replicas):
            return {}
        host, wanted = inventory.deploy_host, served_sections(inventory)
        try:
            connection = connect(host, self.config)
            try:
                result = run_as_root(connection, host, facts_base.script(wanted), timeout=60)
            finally:
                connection.close()
            if not result.ok:
                raise RuntimeError(result.stderr.strip().splitlines()[-1] if result.stderr.strip() else f"exit {result.exited}")
        except Exception as error:  # noqa: BLE001 - any failure to ask is the reason each replica fails
            reason = unreachable_reason(error, host) or f"{type(error).__name__}: {error}"
            return {replica.name: Served(problem=f"cannot read them on {host.name}: {reason}") for replica in inventory.registry.replicas}
        return served_from_facts(inventory, facts_base.parse(result.stdout, wanted))

    def _take(self) -> str:
        """The access from the followed session's facts; why not, when it has none."""
        try:
            facts = self._gathered()  # type: ignore[misc]
        except Exception as error:  # noqa: BLE001 - what kept that session from answering is the reason
            return self._cannot(self.inventory.deploy_host, error)
        return self._from(self.inventory.deploy_host, facts)

    def _ask(self, host: Host) -> str:
        wanted = rules.SECTIONS if self.inventory.registry.secure else rules.SECTIONS[:1]
        try:
            connection = connect(host, self.config)
            try:
                try:
                    connection.open()
                finally:
                    self._connected.set()
                if self.inventory.registry.secure:
                    # The CA and the password: root's to read.
                    result = run_as_root(connection, host, facts_base.script(wanted), timeout=60)
                else:
                    # Only the address: one plain exec, on the path of every target's start.
                    result = execute(connection, facts_base.script(wanted), timeout=30)
            finally:
                connection.close()
        except Exception as error:  # noqa: BLE001 - any failure to ask is the reason this host fails
            return self._cannot(host, error)
        return self._from(host, facts_base.parse(result.stdout, wanted))

    def _cannot(self, host: Host, error: Exception) -> str:
        reason = unreachable_reason(error, host) or f"{type(error).__name__}: {error}"
        return rules.unknown(self.inventory, f"cannot learn the registry from {host.name}: {reason}")

    def _from(self, host: Host, facts: HostFacts) -> str:
        self._access = rules.from_facts(self.inventory, facts)
        if not self._access.address:
            return rules.unknown(self.inventory, f"{host.name} has no IPv4 address (hostname -I)")
        return ""
