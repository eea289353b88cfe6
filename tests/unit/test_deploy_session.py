"""The deployment host's session of pull-images and check-images: two turns in one connection, the second
asked with the registry's address the first learnt; a failure gives each turn its fallback, never a hang.
Over a real SSH server on loopback (no lab)."""

from __future__ import annotations

import getpass
import socket
from dataclasses import replace

import pytest

from fabfile.engine.access import RegistryAccess
from fabfile.engine.deploy_session import DeploySession, Turn
from fabfile.facts.base import files
from fabfile.model.context import StepContext
from fabfile.model.errors import AddressUnknown
from fabfile.model.inventory import Host

from .factories import make_inventory
from .sshserver import SSHServer


def deploy_host(server: SSHServer, tmp_path, port: int = 0) -> Host:
    known = tmp_path / "known_hosts"
    known.write_text(server.known_hosts_line + "\n")
    return Host("deploy1", "127.0.0.1", getpass.getuser(), port or server.port, str(server.client_key), str(known), "strict")


def session(host: Host, timeout: float = 30) -> DeploySession:
    inventory = replace(make_inventory(), deploy_host=host)
    return DeploySession(inventory, StepContext(inventory), None, timeout)


def test_the_second_turn_is_asked_in_the_first_turns_connection_with_the_address_it_learnt(tmp_path):
    server = SSHServer(tmp_path)
    (server.bin / "hostname").write_text("#!/bin/sh\necho 198.51.100.7\n")
    (server.bin / "hostname").chmod(0o755)
    pin, other = tmp_path / "pin.yml", tmp_path / "other"
    pin.write_text("release: 2026.2\n")
    other.write_text("second\n")
    seen = []

    def sections(ctx):
        seen.append(ctx.registry_address)
        return (files(str(other)),)

    deploy = session(deploy_host(server, tmp_path))
    try:
        deploy.start((files(str(pin)),))
        assert deploy.first().files[str(pin)] == "release: 2026.2\n"
        answer = deploy.then(Turn(sections, lambda facts, ctx: facts.files[str(other)], "fallback"))

        assert answer.result(timeout=30) == "second\n"
        assert seen == ["198.51.100.7"]
        assert len(server.transports) == 1 and len(server.commands) == 2
    finally:
        server.close()


def closed_port() -> int:
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()  # nothing listens there now: a connection is refused
    return port


def test_the_nodes_learn_the_registry_from_the_sessions_first_turn_not_a_connection_of_their_own(tmp_path):
    server = SSHServer(tmp_path)
    (server.bin / "hostname").write_text("#!/bin/sh\necho 198.51.100.7\n")
    (server.bin / "hostname").chmod(0o755)
    deploy = session(deploy_host(server, tmp_path))
    access = RegistryAccess(deploy.inventory)
    try:
        deploy.start(())
        access.follow(deploy.gathered)

        assert access.lookup().address == "198.51.100.7"
        assert len(server.transports) == 1 and len(server.commands) == 1
    finally:
        server.close()


def test_when_the_session_cannot_reach_the_deployment_host_the_nodes_are_told_why(tmp_path):
    server = SSHServer(tmp_path)
    port = closed_port()
    deploy = session(deploy_host(server, tmp_path, port))
    access = RegistryAccess(deploy.inventory)
    try:
        deploy.start(())
        access.follow(deploy.gathered)

        with pytest.raises(AddressUnknown, match=rf"^cannot learn the registry from deploy1: SSH connection to .*:{port} refused"):
            access.lookup()
        assert server.transports == []
    finally:
        server.close()


def test_an_unreachable_deployment_host_gives_each_turn_its_fallback(tmp_path):
    server = SSHServer(tmp_path)
    deploy = session(deploy_host(server, tmp_path, closed_port()))
    try:
        deploy.start(())
        assert deploy.first().files == {}
        answer = deploy.then(Turn(lambda ctx: (), lambda facts, ctx: "read", "fallback"))

        assert answer.result(timeout=30) == "fallback"
    finally:
        server.close()


def test_a_session_waits_for_its_second_turn_only_as_long_as_its_timeout(tmp_path):
    server = SSHServer(tmp_path)
    deploy = session(deploy_host(server, tmp_path), timeout=0.5)
    try:
        deploy.start(())
        deploy.first()
        server.transports[0].join(30)  # closed once the turn did not come in time

        assert not server.transports[0].is_active()
        assert deploy.then(Turn(lambda ctx: (), lambda facts, ctx: "read", "fallback")).result(timeout=5) == "fallback"
    finally:
        server.close()
