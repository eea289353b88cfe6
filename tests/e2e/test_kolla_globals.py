"""kolla-globals on deploy1: an operator's globals.yml gets three keys, every other byte is kept."""

from __future__ import annotations

import base64
import difflib

import pytest
import yaml

from .conftest import ensure_deployed

pytestmark = pytest.mark.e2e

GLOBALS = "/etc/kolla/globals.yml"
OPERATORS_FILE = """\
---
# Site globals for the lab cloud -- edited by hand, keep the comments.
kolla_base_distro: "ubuntu"    # jammy images
kolla_internal_vip_address: "10.77.0.250"

# Custom docker registry settings:
docker_registry: quay.io   # the public one, for now
# Please read the docs carefully before applying docker_registry_insecure.
#docker_registry_insecure: "no"
#docker_registry_username:

# Namespace of images:
#docker_namespace: "kolla"

enable_haproxy: "no"
nova_compute_virt_type: "qemu"
"""


def read(hosts, path: str) -> str | None:
    """A file's exact text on deploy1, or None when absent."""
    encoded = hosts.run("deploy1", f"if [ -e {path} ]; then base64 -w0 {path}; else echo absent; fi")
    return None if encoded == "absent" else base64.b64decode(encoded).decode()


def write(hosts, path: str, text: str) -> None:
    encoded = base64.b64encode(text.encode()).decode()
    hosts.run("deploy1", f"mkdir -p $(dirname {path}) && echo {encoded} | base64 -d > {path}")


def backups(hosts) -> list[str]:
    listed = hosts.run("deploy1", "ls /var/backups/kolla-registry/ 2>/dev/null || true")
    return [name for name in listed.split() if name.startswith("etc_kolla_globals.yml.")]


@pytest.fixture(scope="module")
def operators_globals(fab, hosts):
    """deploy1 with the operator's globals.yml; whatever was there before comes back after."""
    ensure_deployed(fab)
    before = read(hosts, GLOBALS)
    had_folder = hosts.run("deploy1", "test -d /etc/kolla && echo yes || echo no") == "yes"
    write(hosts, GLOBALS, OPERATORS_FILE)
    yield hosts
    if before is not None:
        write(hosts, GLOBALS, before)
    elif had_folder:
        hosts.run("deploy1", f"rm -f {GLOBALS}")
    else:
        hosts.run("deploy1", "rm -rf /etc/kolla")


def registry_of(hosts) -> str:
    return f"{hosts.inventory.deploy_host.address}:{hosts.inventory.registry.port}"


def test_check_mode_shows_the_change_and_writes_nothing(operators_globals, fab):
    result = fab("kolla-globals", "--check", "--diff")

    assert result.code == 0, result.output
    assert "deploy1 | kolla-globals | CHANGED | write /etc/kolla/globals.yml" in result.output
    assert (
        f'+docker_registry: "{registry_of(operators_globals)}"   # the public one, for now' in result.output
    )
    assert read(operators_globals, GLOBALS) == OPERATORS_FILE


def test_only_the_three_keys_differ(operators_globals, fab):
    kept = len(backups(operators_globals))
    result = fab("kolla-globals")

    assert result.code == 0, result.output
    assert "deploy1 | kolla-globals | CHANGED" in result.output
    after = read(operators_globals, GLOBALS)
    changed = [
        line
        for line in difflib.ndiff(OPERATORS_FILE.splitlines(True), after.splitlines(True))
        if line.startswith(("-", "+"))
    ]
    registry = registry_of(operators_globals)
    assert changed == [
        "- docker_registry: quay.io   # the public one, for now\n",
        f'+ docker_registry: "{registry}"   # the public one, for now\n',
        "+ docker_registry_insecure: true\n",
        '+ docker_namespace: "openstack.kolla"\n',
    ]
    data = yaml.safe_load(after)
    assert (data["docker_registry"], data["docker_registry_insecure"], data["docker_namespace"]) == (
        registry,
        True,
        "openstack.kolla",
    )
    assert len(backups(operators_globals)) == kept + 1


def test_second_run_changes_nothing(operators_globals, fab):
    first = fab("kolla-globals")  # a no-op after the test above; the first run when this one runs alone
    assert first.code == 0, first.output
    before = read(operators_globals, GLOBALS)
    kept = backups(operators_globals)

    result = fab("kolla-globals")

    assert result.code == 0, result.output
    assert "deploy1 | kolla-globals | OK" in result.output
    assert read(operators_globals, GLOBALS) == before
    assert backups(operators_globals) == kept


def test_a_missing_file_is_created_at_the_given_path(operators_globals, fab):
    path = "/tmp/kolla-globals-e2e/globals.yml"
    operators_globals.run("deploy1", f"rm -rf {path.rsplit('/', 1)[0]}")
    try:
        result = fab("kolla-globals", "--path", path, "--namespace", "kolla")

        assert result.code == 0, result.output
        assert yaml.safe_load(read(operators_globals, path)) == {
            "docker_registry": registry_of(operators_globals),
            "docker_registry_insecure": True,
            "docker_namespace": "kolla",
        }
    finally:
        operators_globals.run("deploy1", f"rm -rf {path.rsplit('/', 1)[0]}")
