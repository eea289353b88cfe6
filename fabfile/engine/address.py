"""The registry's address: the inventory's, else the deployment host's first ``hostname -I`` address."""

from __future__ import annotations

import ipaddress
import threading

from fabric import Config

from ..inventory import Host, Inventory
from ..remote.connection import connect, execute, unreachable_reason


class AddressUnknown(Exception):
    """The registry address could not be learnt; the message says why and what to set."""


class RegistryAddress:
    """Learns the address once per run, however many hosts ask, and from facts where it can."""

    def __init__(self, inventory: Inventory, config: Config | None = None) -> None:
        self.inventory = inventory
        self.config = config
        self._lock = threading.Lock()
        self._address = inventory.registry.address or ""
        self._error = ""

    def from_facts(self, host: Host) -> bool:
        """Whether ``host``'s own facts give the address: it is the deployment host, and none is set."""
        return not self.inventory.registry.address and host == self.inventory.deploy_host

    def learnt(self, addresses: list[str]) -> str:
        """The address from the deployment host's facts (its ``hostname -I``)."""
        with self._lock:
            self._address = self._address or first_ipv4(addresses)
            return self._address

    def start(self) -> None:
        """Ask the deployment host in the background, so that hosts connecting meanwhile need not wait."""
        threading.Thread(target=self.known_or_empty, daemon=True).start()

    def known_or_empty(self) -> str:
        try:
            return self.lookup()
        except AddressUnknown:
            return ""

    def lookup(self) -> str:
        """The address; asks the deployment host (once per run) when the inventory does not set it."""
        with self._lock:
            if not self._address and not self._error:
                self._address, self._error = self._ask(self.inventory.deploy_host)
            if self._error:
                raise AddressUnknown(self._error)
            return self._address

    def _ask(self, host: Host) -> tuple[str, str]:
        try:
            connection = connect(host, self.config)
            try:
                output = execute(connection, "hostname -I", timeout=30).stdout
            finally:
                connection.close()
        except Exception as error:  # noqa: BLE001 - any failure to ask is the reason this host fails
            reason = unreachable_reason(error, host) or f"{type(error).__name__}: {error}"
            return "", self._unknown(f"cannot learn the registry address from {host.name}: {reason}")
        address = first_ipv4(output.split())
        return (address, "") if address else ("", self._unknown(f"{host.name} has no address (hostname -I)"))

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
