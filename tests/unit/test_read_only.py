"""Nodes only read: the registry they reach refuses every write, and the deployment host writes through its writer."""

from __future__ import annotations

from fabfile.engines.docker.verify import verify_script
from fabfile.images.host_lock import LOCK_WAIT
from fabfile.registry.container import READ_ONLY_ENV, registry_run_command
from fabfile.registry.writer import WRITER_SOCKET

from .factories import make_ctx

SECURE = {"tls": "self-signed", "auth": "htpasswd"}


def test_the_registry_nodes_reach_is_read_only_in_every_mode():
    for settings in ({}, {"network": "bridge"}, SECURE, {"tls": "self-signed"}):
        command = registry_run_command(make_ctx(settings), settings.get("network") != "bridge", "spec")
        assert f"-e '{READ_ONLY_ENV}'" in command, settings
        # Deletes are the writer's: the registry nodes reach does not even allow them.
        assert "DELETE_ENABLED" not in command


def test_verify_registry_pushes_its_probe_through_the_writer_under_the_lock_and_pulls_it_with_docker():
    script = verify_script(make_ctx(SECURE, address="192.0.2.10"), push=True)

    assert "docker push" not in script
    lock, writer = script.index(f"flock -w {LOCK_WAIT} 9"), script.index("docker run -d --name registry-writer")
    pushed, dropped = script.index("push_probe("), script.index("docker rmi -f")
    assert lock < writer < pushed < dropped < script.index("docker login") < script.index("docker pull 192.0.2.10:4000/")
    assert f"REGISTRY_HTTP_ADDR={WRITER_SOCKET}" in script


def test_a_target_s_check_pushes_nothing():
    script = verify_script(make_ctx(SECURE, address="192.0.2.10"), push=False)

    assert "registry-writer" not in script and "docker push" not in script and "flock" not in script
