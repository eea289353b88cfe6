"""What every host needs to know of the registry: its address and, when it is secure, its CA and login.

The address is the inventory's (``registry.address``, else ``registry.bind``),
else the deployment host's first ``hostname -I`` IPv4 address; the CA and the
password live on the deployment host (deploy-host makes them). They are learnt
once per run however many hosts ask, from the deployment host's own facts where
the run has them (also when it is listed as a target), so every host agrees.
"""

from __future__ import annotations

import ipaddress
import threading
from dataclasses import dataclass, field, replace

from fabric import Config

from ..inventory import Host, Inventory
from ..remote import facts as host_facts
from ..remote.connection import connect, execute, run_as_root, unreachable_reason


class AddressUnknown(Exception):
    """The registry could not be learnt; the message says why and what to set."""


@dataclass(frozen=True)
class Access:
    """The registry's address, and for a secure one its CA (PEM) and the password of its user."""

    address: str = ""
    ca: str = ""
    password: str = field(default="", repr=False)


@dataclass(frozen=True)
class Instance:
    """One registry instance: the host that runs it, and the IPv4 address nodes reach it at."""

    name: str
    address: str


# What the deployment host tells of its registry.
SECTIONS = (host_facts.ADDRESSES, host_facts.files(host_facts.CA_CERT, host_facts.PASSWORD))


class RegistryAddress:
    """Learns the registry's ``Access`` once per run, from facts where it can."""

    def __init__(self, inventory: Inventory, config: Config | None = None, serving: bool = False) -> None:
        self.inventory = inventory
        self.config = config
        # A task about the instances themselves (deploy-host, sync, prune, status): each registry
        # host uses its own; else hosts use the registry's name (registry.hostname) when there is one.
        self.serving = serving
        self._lock = threading.Lock()
        self._access = Access(inventory.registry.known_address)
        self._error = ""
        self._asked = not self._needs_host()

    def _needs_host(self) -> bool:
        return not self.inventory.registry.known_address or self.inventory.registry.secure

    def from_facts(self, host: Host) -> bool:
        """Whether ``host``'s own facts tell it: it is the deployment host (or a target that is it)."""
        return self._needs_host() and self.inventory.is_deploy_host(host)

    def learnt(self, facts: host_facts.HostFacts) -> Access:
        """The access from the deployment host's facts (gathered with ``SECTIONS``)."""
        with self._lock:
            self._access = self._from(facts)
            self._asked, self._error = True, ""
            return self._access

    def start(self) -> None:
        """Ask the deployment host in the background, so that hosts connecting meanwhile need not wait."""
        threading.Thread(target=self.known_or_empty, daemon=True).start()

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
                self._error = self._ask(self.inventory.deploy_host)
            if self._error:
                raise AddressUnknown(self._error)
            return self._access

    def _ask(self, host: Host) -> str:
        try:
            connection = connect(host, self.config)
            try:
                if self.inventory.registry.secure:
                    # The CA and the password: root's to read.
                    result = run_as_root(connection, host, host_facts.script(SECTIONS), timeout=60)
                else:
                    # Only the address: one plain exec, on the path of every target's start.
                    result = execute(connection, host_facts.script(SECTIONS[:1]), timeout=30)
            finally:
                connection.close()
        except Exception as error:  # noqa: BLE001 - any failure to ask is the reason this host fails
            reason = unreachable_reason(error, host) or f"{type(error).__name__}: {error}"
            return self._unknown(f"cannot learn the registry from {host.name}: {reason}")
        self._access = self._from(host_facts.parse(result.stdout, SECTIONS))
        if not self._access.address:
            return self._unknown(f"{host.name} has no IPv4 address (hostname -I)")
        return ""

    def _from(self, facts: host_facts.HostFacts) -> Access:
        # A registry bound to one address is reached there, by the deployment host and targets alike.
        address = self.inventory.registry.known_address or first_ipv4(facts.addresses)
        if not self.inventory.registry.secure:
            return Access(address)
        return Access(address, facts.files.get(host_facts.CA_CERT, ""), facts.files.get(host_facts.PASSWORD, "").strip())

    def seen_from(self, host: Host, access: Access) -> Access:
        """What ``host`` uses: its own instance in a serving task, else the registry's name when set."""
        hostname = self.inventory.registry.hostname
        if not hostname or not access.address:
            return access
        own = self.own_instance(host, access.address)
        return replace(access, address=own if self.serving and own else hostname)

    def own_instance(self, host: Host, deploy_address: str) -> str:
        """The address of the instance ``host`` runs, or "" when it runs none."""
        if self.inventory.is_deploy_host(host):
            return deploy_address
        for replica in self.inventory.registry.replicas:
            if host.name == replica.name or host.address == replica.address:
                return replica.address
        return ""

    def instances(self) -> tuple[Instance, ...]:
        """Every instance, the deployment host's first (asks it for its address when needed)."""
        deploy = self.inventory.deploy_host
        replicas = self.inventory.registry.replicas
        return (Instance(deploy.name, self.lookup().address), *(Instance(r.name, r.address) for r in replicas))

    def _unknown(self, reason: str) -> str:
        return f"{reason}; set registry.address in {self.inventory.path}"


def first_ipv4(addresses: list[str]) -> str:
    """The first IPv4 address a host gave (Docker rejects IPv6 ones in insecure-registries), or ""."""
    for address in addresses:
        try:
            if ipaddress.ip_address(address).version == 4:
                return address
        except ValueError:
            continue
    return ""
