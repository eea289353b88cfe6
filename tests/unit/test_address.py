"""The registry's address: the same for the deployment host and every target, however it is learnt."""

from __future__ import annotations

import getpass
import threading
from dataclasses import replace

from fabfile.engine.access import RegistryAccess
from fabfile.model.inventory import Host

from .factories import REGISTRY_IP, host_facts, make_inventory
from .sshserver import SSHServer

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


def test_hosts_wait_for_the_lookups_connection_to_open_not_for_its_answer(tmp_path):
    server = SSHServer(tmp_path)
    gate = tmp_path / "gate"
    # The deployment host answers its address only once the test opens the gate.
    (server.bin / "hostname").write_text(f"#!/bin/sh\nwhile [ ! -e {gate} ]; do sleep 0.05; done\necho 192.0.2.77\n")
    (server.bin / "hostname").chmod(0o755)
    known = tmp_path / "known_hosts"
    known.write_text(server.known_hosts_line + "\n")
    deploy = Host("deploy1", "127.0.0.1", getpass.getuser(), server.port, str(server.client_key), str(known), "strict")
    access = RegistryAccess(replace(make_inventory(), deploy_host=deploy))
    try:
        access.start()
        access.head_start()
        assert access._connected.is_set()  # not the bounded wait running out: the connection opened
        asked = threading.Thread(target=access.lookup)
        asked.start()
        asked.join(0.5)
        assert asked.is_alive() and not gate.exists()  # connected, still waiting for the answer
        gate.touch()
        asked.join(30)
        assert access.lookup().address == "192.0.2.77"
    finally:
        gate.touch()
        server.close()


def test_where_no_lookup_was_started_no_host_waits_for_one():
    # deploy-host, status...: the lookup, if any, happens in a host's own turn; nothing to wait for.
    access = RegistryAccess(make_inventory({"tls": "self-signed"}))
    assert access._connected.is_set()
