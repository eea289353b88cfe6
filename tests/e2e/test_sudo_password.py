"""sudo with a password on the lab (issue 19, item 9): the script goes on stdin after the password.

node2's operator is made to need a password for sudo (the lab gives it
NOPASSWD, restored after). fab gets the password as --prompt-for-sudo-password
would put it in its config (here from FABRIC_SUDO_PASSWORD).
"""

from __future__ import annotations

import shlex

import pytest

from .conftest import ensure_deployed, inventory_variant, reset_targets

pytestmark = pytest.mark.e2e

NODE = "node2"
PASSWORD = "kolla registry 'pw'"
SUDOERS = "/etc/sudoers.d/operator"


@pytest.fixture
def password_sudo(lab, fab, hosts, tmp_path):
    """node2's operator needs its password for sudo; an inventory that logs in to node2 as operator."""
    ensure_deployed(fab)
    reset_targets(hosts, [NODE])
    hosts.run(
        NODE,
        f"echo 'operator ALL=(ALL) ALL' > {SUDOERS} && printf '%s\\n' {shlex.quote('operator:' + PASSWORD)} | chpasswd",
    )

    def edit(data):
        for host in data["targets"]:
            host["user"] = "operator"

    yield inventory_variant(lab.inventory, tmp_path, targets=[NODE], edit=edit)
    hosts.run(NODE, f"echo 'operator ALL=(ALL) NOPASSWD:ALL' > {SUDOERS} && chmod 440 {SUDOERS} && passwd -d operator")
    reset_targets(hosts, [NODE])


def row(output: str) -> str:
    rows = [line for line in output.splitlines() if line.startswith(f"{NODE} | configure-targets |")]
    assert rows, output
    return rows[-1]


def operators_files(hosts) -> str:
    """Files in /tmp the login user owns: where the old code put the script for sudo."""
    return hosts.run(NODE, "find /tmp /var/tmp -xdev -user operator -type f 2>/dev/null | sort")


def test_sudo_takes_the_password_then_the_script_on_stdin(password_sudo, fab, hosts, monkeypatch):
    monkeypatch.setenv("FABRIC_SUDO_PASSWORD", PASSWORD)
    before = operators_files(hosts)

    result = fab("configure-targets", inventory=password_sudo)

    assert result.code == 0, result.output
    assert " | CHANGED | " in row(result.output)
    assert operators_files(hosts) == before
    again = fab("configure-targets", inventory=password_sudo)
    assert again.code == 0 and " | OK | " in row(again.output), again.output


def test_a_wrong_password_is_one_line_and_runs_nothing(password_sudo, fab, hosts, monkeypatch):
    monkeypatch.setenv("FABRIC_SUDO_PASSWORD", "not the password")

    result = fab("configure-targets", inventory=password_sudo)

    assert result.code == 1, result.output
    assert row(result.output).endswith("sudo refused the password given with --prompt-for-sudo-password")
    assert hosts.run(NODE, "test -e /etc/docker/daemon.json && echo written || echo none") == "none"
    assert "Traceback" not in result.output


def test_host_key_policy_off_with_a_password_is_refused(lab, password_sudo, fab, monkeypatch, tmp_path):
    monkeypatch.setenv("FABRIC_SUDO_PASSWORD", PASSWORD)
    (tmp_path / "off").mkdir()
    unchecked = inventory_variant(
        password_sudo, tmp_path / "off", edit=lambda data: data["targets"][0].update(host_key_policy="off")
    )

    result = fab("configure-targets", inventory=unchecked)

    assert result.code == 1, result.output
    assert row(result.output).endswith(
        f"UNREACHABLE | operator@{lab.node_ip(NODE)}: host_key_policy off with a sudo password: refused "
        "(the password would go to whoever answers there; use accept-new or strict)"
    )
