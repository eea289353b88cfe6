"""The write path on the lab (issue 19, item 1): an /etc/kolla the operator owns, with links planted in it.

Root refuses to write through it, naming the folder and its owner; with
``write_as: {/etc/kolla: operator}`` the files are written as operator, so a
planted link reaches only what operator could. Nothing outside is touched.
"""

from __future__ import annotations

import base64

import pytest

from .conftest import ensure_deployed, inventory_variant

pytestmark = pytest.mark.e2e

KOLLA = "/etc/kolla"
GLOBALS = f"{KOLLA}/globals.yml"
ORIGINAL = 'kolla_base_distro: "debian"   # the operator\'s own line\n'
# What a run must never change, and a file no run may make.
ROOT_FILES = ("/etc/shadow", "/etc/sudoers")
SUDOERS_DROPIN = "/etc/sudoers.d/zz-kolla-registry-test"
ROOT_ONLY = "/root/kolla-registry-test.yml"


def digests(hosts) -> str:
    return hosts.run("deploy1", f"sha256sum {' '.join(ROOT_FILES)}; stat -c '%U %a %n' {' '.join(ROOT_FILES)}")


@pytest.fixture
def operators_kolla(lab, fab, hosts):
    """deploy1's /etc/kolla as kolla-ansible's quickstart leaves it (chown operator), restored after."""
    ensure_deployed(fab)
    saved = hosts.run("deploy1", f"if [ -e {KOLLA} ]; then tar -C /etc -cf - kolla | base64 -w0; fi")
    encoded = base64.b64encode(ORIGINAL.encode()).decode()
    hosts.run(
        "deploy1",
        f"rm -rf {KOLLA} {SUDOERS_DROPIN} && install -d -o operator -g operator -m 755 {KOLLA} "
        f"&& echo {encoded} | base64 -d > {GLOBALS} && chown operator:operator {GLOBALS}",
    )
    yield hosts
    hosts.run("deploy1", f"rm -rf {KOLLA} {SUDOERS_DROPIN} {ROOT_ONLY}")
    if saved:
        hosts.run("deploy1", f"echo {saved} | base64 -d | tar -C /etc -xf -")


def globals_row(output: str) -> str:
    rows = [line for line in output.splitlines() if line.startswith("deploy1 | kolla-globals |")]
    assert rows, output
    return rows[-1]


def test_root_refuses_an_operators_folder_with_a_planted_link(lab, fab, operators_kolla, tmp_path):
    hosts = operators_kolla
    before = digests(hosts)
    # As operator: the old fixed temporary name and the file itself lead to root's files.
    hosts.run(
        "deploy1",
        f"su -s /bin/sh operator -c 'ln -s /etc/shadow {GLOBALS}.kolla-registry.tmp "
        f"&& ln -s {SUDOERS_DROPIN} {KOLLA}/passwords.yml'",
    )

    result = fab("kolla-globals")

    assert result.code == 1, result.output
    row = globals_row(result.output)
    assert " | FAILED | " in row and row.endswith(
        f": {GLOBALS}: {KOLLA} is owned by operator, not root: refused "
        f"(write_as: {{{KOLLA}: operator}} in the inventory writes there as operator)"
    )
    assert digests(hosts) == before
    assert hosts.run("deploy1", f"cat {GLOBALS}") == ORIGINAL.strip()
    assert hosts.run("deploy1", f"test -e {SUDOERS_DROPIN} && echo made || echo none") == "none"
    assert hosts.run("deploy1", f"stat -c %U {GLOBALS}") == "operator"


def test_with_write_as_the_operator_writes_and_a_planted_link_reaches_nothing_of_roots(
    lab, fab, operators_kolla, tmp_path
):
    hosts = operators_kolla
    before = digests(hosts)
    inventory = inventory_variant(
        lab.inventory, tmp_path, edit=lambda data: data["deploy_host"].update(write_as={KOLLA: "operator"})
    )
    hosts.run("deploy1", f"su -s /bin/sh operator -c 'ln -s /etc/shadow {GLOBALS}.kolla-registry.tmp'")

    written = fab("kolla-globals", inventory=inventory)

    assert written.code == 0, written.output
    assert "deploy1 | kolla-globals | CHANGED" in written.output
    text = hosts.run("deploy1", f"cat {GLOBALS}")
    assert text.startswith(ORIGINAL.strip()) and "docker_registry:" in text
    assert hosts.run("deploy1", f"stat -c '%U %G' {GLOBALS}") == "operator operator"
    assert hosts.run("deploy1", f"readlink {GLOBALS}.kolla-registry.tmp") == "/etc/shadow"
    assert hosts.run("deploy1", f"ls -A {KOLLA}").split() == ["globals.yml", "globals.yml.kolla-registry.tmp"]
    assert hosts.run("deploy1", "stat -c %a /var/backups/kolla-registry") == "700"

    # operator now swaps globals.yml for a link to a root file (YAML, as globals.yml would be): as
    # operator, the run can neither read it nor write it.
    hosts.run("deploy1", f"printf 'secret: 1\\n' > {ROOT_ONLY} && chmod 600 {ROOT_ONLY}")
    hosts.run("deploy1", f"su -s /bin/sh operator -c 'rm {GLOBALS} && ln -s {ROOT_ONLY} {GLOBALS}'")
    refused = fab("kolla-globals", inventory=inventory)
    assert refused.code == 1, refused.output
    row = globals_row(refused.output)
    assert " | FAILED | " in row and row.endswith(f": {GLOBALS}: cannot be read as operator")

    hosts.run("deploy1", f"su -s /bin/sh operator -c 'rm {GLOBALS} && ln -s {SUDOERS_DROPIN} {GLOBALS}'")
    dangling = fab("kolla-globals", inventory=inventory)
    assert dangling.code == 1, dangling.output
    row = globals_row(dangling.output)
    assert " | FAILED | " in row and f": {GLOBALS}: as operator: mktemp: " in row and row.endswith("Permission denied")

    assert digests(hosts) == before
    assert hosts.run("deploy1", f"test -e {SUDOERS_DROPIN} && echo made || echo none") == "none"
    assert hosts.run("deploy1", f"cat {ROOT_ONLY}") == "secret: 1"
    assert hosts.run("deploy1", "ls -A /etc/sudoers.d /root | grep -cF .kolla-registry. || true") == "0"
