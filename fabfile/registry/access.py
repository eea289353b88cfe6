"""What every host needs to know of the registry: its address and, when it is secure, its CA and login.

The address is the inventory's (``registry.address``, else ``registry.bind``),
else the deployment host's first ``hostname -I`` IPv4 address; the CA and the
password live on the deployment host (deploy-host makes them). The engine
learns them once per run (``engine.access``); these are the pure rules.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field, replace

from ..facts.base import files
from ..facts.system import ADDRESSES
from ..model.facts import HostFacts
from ..model.inventory import Host, Inventory
from .paths import CA_CERT, OLD_CA_CERT, PASSWORD


@dataclass(frozen=True)
class Access:
    """The registry's address, and for a secure one its CA (PEM) and the password of its user."""

    address: str = ""
    ca: str = ""
    password: str = field(default="", repr=False)


@dataclass(frozen=True)
class Instance:
    """One registry instance: the host that runs it, the IPv4 address nodes reach it at, and its zone."""

    name: str
    address: str
    zone: str = ""


# What the deployment host tells of its registry (the CA where versions before CA_DIR kept it, too:
# until deploy-host moves it, nodes keep getting it).
SECTIONS = (ADDRESSES, files(CA_CERT, OLD_CA_CERT, PASSWORD))


def needs_deploy_host(inventory: Inventory) -> bool:
    """Whether the deployment host must be asked: the inventory does not give the address, or TLS is on."""
    return not inventory.registry.known_address or inventory.registry.secure


def from_facts(inventory: Inventory, facts: HostFacts) -> Access:
    """The access as the deployment host's facts (gathered with ``SECTIONS``) tell it."""
    # A registry bound to one address is reached there, by the deployment host and targets alike.
    address = inventory.registry.known_address or first_ipv4(facts.system.addresses)
    if not inventory.registry.secure:
        return Access(address)
    ca = facts.files.get(CA_CERT) or facts.files.get(OLD_CA_CERT, "")
    return Access(address, ca, facts.files.get(PASSWORD, "").strip())


def seen_from(inventory: Inventory, host: Host, access: Access, serving: bool) -> Access:
    """What ``host`` uses: its own instance in a ``serving`` task, else the registry's name when set."""
    hostname = inventory.registry.hostname
    if not hostname or not access.address:
        return access
    own = own_instance(inventory, host, access.address)
    return replace(access, address=own if serving and own else hostname)


def own_instance(inventory: Inventory, host: Host, deploy_address: str) -> str:
    """The address of the instance ``host`` runs, or "" when it runs none."""
    if inventory.is_deploy_host(host):
        return deploy_address
    for replica in inventory.registry.replicas:
        if host.name == replica.name or host.address == replica.address:
            return replica.address
    return ""


def instances(inventory: Inventory, deploy_address: str) -> tuple[Instance, ...]:
    """Every instance, the deployment host's first."""
    deploy, replicas = inventory.deploy_host, inventory.registry.replicas
    return (Instance(deploy.name, deploy_address, deploy.zone), *(Instance(r.name, r.address, r.zone) for r in replicas))


def unknown(inventory: Inventory, reason: str) -> str:
    """Why the registry could not be learnt, and the setting that tells it."""
    return f"{reason}; set registry.address in {inventory.path}"


def first_ipv4(addresses: list[str]) -> str:
    """The first IPv4 address a host gave (Docker rejects IPv6 ones in insecure-registries), or ""."""
    for address in addresses:
        try:
            if ipaddress.ip_address(address).version == 4:
                return address
        except ValueError:
            continue
    return ""
