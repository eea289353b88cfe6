"""The registry's address: the same for the deployment host and every target, however it is learnt."""

from __future__ import annotations

from dataclasses import replace

from fabfile.engine.access import RegistryAccess
from fabfile.model.inventory import Host

from .factories import REGISTRY_IP, host_facts, make_inventory

# The deployment host listed again among the targets: by its own name, or under another one.
SAME_ENTRY = Host("deploy1", REGISTRY_IP)
OTHER_NAME = Host("ctl1", REGISTRY_IP)


def with_targets(*targets: Host, **registry):
    inventory = make_inventory(registry)
    return replace(inventory, targets=(*targets, *inventory.targets))


def test_a_target_that_is_the_deployment_host_learns_the_address_from_its_own_facts():
    inventory = with_targets(SAME_ENTRY, OTHER_NAME)
    address = RegistryAccess(inventory)
    own = host_facts(addresses=["fe80::1", REGISTRY_IP, "172.17.0.1"])

    from_own_facts = [host.name for host in inventory.targets if address.from_facts(host)]
    learnt = address.learnt(own).address

    assert from_own_facts == ["deploy1", "ctl1"] and learnt == REGISTRY_IP
    assert address.lookup().address == REGISTRY_IP  # what the other targets then get, without asking


def test_a_bound_registry_is_reached_at_its_bind_address_by_every_host():
    inventory = with_targets(SAME_ENTRY, bind="192.0.2.20")
    address = RegistryAccess(inventory)

    assert not address.from_facts(inventory.deploy_host)
    assert address.lookup().address == "192.0.2.20"  # asked nobody: the deployment host is not even real


def test_the_inventory_address_wins_over_bind():
    address = RegistryAccess(make_inventory({"address": "reg.lab", "bind": "192.0.2.20"}))

    assert address.lookup().address == "reg.lab"
