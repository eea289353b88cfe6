"""The fab command line, without hosts: task list, help, and bad inventories."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parents[1]
FAB = str(Path(sys.executable).with_name("fab"))


def fab(*args: str, inventory: Path | None = None) -> subprocess.CompletedProcess:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(PROJECT)}
    if inventory:
        env["KOLLA_REGISTRY_HOSTS"] = str(inventory)
    return subprocess.run([FAB, *args], cwd=PROJECT, env=env, capture_output=True, text=True, check=False)


def test_every_documented_step_is_a_task():
    listed = fab("--list").stdout
    for name in (
        "update-packages",
        "upgrade-kernel",
        "install-docker",
        "create-registry",
        "trust-registry",
        "copy-docker-unit",
        "add-docker-opts",
        "restart-docker",
        "verify-registry",
        "deploy-host",
        "configure-targets",
        "prune-registry",
    ):
        assert f"  {name} " in listed


def test_task_help_explains_check_and_diff():
    shown = fab("--help", "configure-targets").stdout
    assert "--check" in shown and "change nothing" in shown
    assert "--diff" in shown and "--parallel" in shown


@pytest.fixture
def listener():
    """A loopback port that counts connections, to prove nothing was contacted."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    server.settimeout(0.2)
    accepted = []
    stop = threading.Event()

    def serve():
        while not stop.is_set():
            try:
                accepted.append(server.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1], accepted
    stop.set()
    thread.join()
    server.close()


BAD_INVENTORIES = {
    "empty": ("", "the file is empty"),
    "not yaml": ("deploy_host: [unclosed\n", "not valid YAML"),
    "no deploy host": ("targets:\n  - {name: n1, address: 127.0.0.1, port: PORT}\n", "deploy_host: missing"),
    "target twice": (
        (
            "deploy_host: {name: d1, address: 127.0.0.1, port: PORT}\n"
            "targets:\n  - {name: n1, address: 127.0.0.2, port: PORT}\n  - {name: n1, address: 127.0.0.3, port: PORT}\n"
        ),
        "targets[1].name: 'n1' is listed twice",
    ),
    "port out of range": (
        (
            "deploy_host: {name: d1, address: 127.0.0.1, port: PORT}\nregistry: {port: 70000}\n"
            "targets:\n  - {name: n1, address: 127.0.0.2, port: PORT}\n"
        ),
        "registry.port: 70000 is not a port number",
    ),
    "typo": (
        "deploy_host: {name: d1, adress: 127.0.0.1, port: PORT}\n",
        "deploy_host.adress: unknown key (did you mean 'address'?)",
    ),
    "no address": (
        "deploy_host: {name: d1, address: 127.0.0.1, port: PORT}\ntargets:\n  - {name: n1, port: PORT}\n",
        "targets[0].address: missing",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_INVENTORIES))
@pytest.mark.parametrize("task", ["deploy-host", "configure-targets"])
def test_a_bad_inventory_is_one_line_and_exit_2(case, task, tmp_path, listener):
    port, accepted = listener
    text, expected = BAD_INVENTORIES[case]
    path = tmp_path / "hosts.yaml"
    path.write_text(text.replace("PORT", str(port)))
    result = fab(task, inventory=path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"error: {path}: ")
    assert expected in lines[0]
    assert accepted == []


def test_a_missing_inventory_file_is_named(tmp_path):
    result = fab("deploy-host", inventory=tmp_path / "nope.yaml")
    assert result.returncode == 2
    assert result.stderr.strip() == f"error: {tmp_path / 'nope.yaml'}: cannot read: No such file or directory"


TASKS = [
    line.split()[0]
    for line in fab("--list").stdout.splitlines()
    if line[:3].strip() and line.startswith("  ")
]
SHORT = {"-c": "--check", "-d": "--diff", "-r": "--repair", "-p": "--parallel"}


@pytest.mark.parametrize("task", TASKS)
def test_a_short_flag_means_the_same_in_every_task(task):
    options = [
        line.strip() for line in fab("--help", task).stdout.splitlines() if line.strip().startswith("-")
    ]
    assert options
    for line in options:
        flag = line.split()[0].rstrip(",")
        if not flag.startswith("--"):
            assert f", {SHORT[flag]}" in line, f"{task}: {line}"


@pytest.mark.parametrize(
    "task, modes",
    [
        ("deploy-host", {"--check", "--diff", "--repair"}),
        ("create-registry", {"--check", "--diff", "--repair"}),
        ("configure-targets", {"--check", "--diff", "--repair"}),
        ("kolla-globals", {"--check", "--diff"}),
        ("sync-images", {"--check", "--diff"}),
        ("pull-images", {"--check", "--diff"}),
        ("prune-registry", {"--check", "--diff"}),
        ("status", set()),
        ("verify-registry", set()),
    ],
)
def test_each_task_offers_the_modes_the_readme_says(task, modes):
    shown = fab("--help", task).stdout
    assert {mode for mode in ("--check", "--diff", "--repair") if mode in shown} == modes
    assert "--parallel" in shown


@pytest.mark.parametrize("task", TASKS)
def test_every_task_offers_json(task):
    options = [line.split()[0] for line in fab("--help", task).stdout.splitlines() if line.strip().startswith("-")]
    assert "--json" in [option.rstrip(",") for option in options], task


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_several_hosts_are_one_run_with_one_recap(tmp_path):
    port = closed_port()
    inventory = tmp_path / "hosts.yaml"
    inventory.write_text(
        f"deploy_host: {{name: deploy1, address: 127.0.0.1, port: {port}}}\n"
        f"targets:\n  - {{name: node1, address: 127.0.0.2, port: {port}}}\n"
        f"  - {{name: node2, address: 127.0.0.3, port: {port}}}\n"
        "registry: {address: 127.0.0.1}\n"
    )

    done = fab("-H", "node1,node2", "configure-targets", inventory=inventory)

    assert done.returncode == 1
    assert done.stdout.count("RECAP") == 1
    for name, address in (("node1", "127.0.0.2"), ("node2", "127.0.0.3")):
        assert (
            f"{name} | configure-targets | UNREACHABLE | SSH connection to root@{address}:{port} refused"
            in done.stdout
        )


def test_a_host_that_is_neither_in_the_inventory_nor_an_address_is_refused(tmp_path):
    inventory = tmp_path / "hosts.yaml"
    inventory.write_text("deploy_host: {name: deploy1, address: 127.0.0.1}\n")

    done = fab("-H", "x;touch PWNED", "status", inventory=inventory)

    assert done.returncode == 2
    assert (
        done.stderr.strip()
        == "error: -H: 'x;touch PWNED' is neither an inventory host nor a host name or address"
    )


def test_a_globals_path_with_shell_syntax_is_refused(tmp_path):
    inventory = tmp_path / "hosts.yaml"
    inventory.write_text("deploy_host: {name: deploy1, address: 127.0.0.1}\n")

    done = fab("kolla-globals", "--path", "/etc/kolla/$(touch PWNED).yml", inventory=inventory)

    assert done.returncode == 2
    assert "error: --path: '/etc/kolla/$(touch PWNED).yml' is not an absolute path" in done.stderr


def test_the_deployment_host_listed_as_a_target_is_accepted_and_shown_once(tmp_path):
    port = closed_port()
    inventory = tmp_path / "hosts.yaml"
    inventory.write_text(
        f"deploy_host: {{name: deploy1, address: 127.0.0.1, port: {port}}}\n"
        f"targets:\n  - {{name: deploy1, address: 127.0.0.1, port: {port}}}\n"
        f"  - {{name: node1, address: 127.0.0.2, port: {port}}}\n"
        "registry: {address: 127.0.0.1}\n"
    )

    targets = fab("configure-targets", inventory=inventory)
    status = fab("status", "--json", inventory=inventory)

    assert targets.returncode == 1, targets.stderr  # the hosts are unreachable; the inventory is fine
    for name, address in (("deploy1", "127.0.0.1"), ("node1", "127.0.0.2")):
        row = f"{name} | configure-targets | UNREACHABLE | SSH connection to root@{address}:{port}"
        assert row in targets.stdout
    shown = [(host["host"], host["role"]) for host in json.loads(status.stdout)["hosts"]]
    assert shown == [("deploy1", "deploy+target"), ("node1", "target")]


@pytest.mark.parametrize(
    "args, expected",
    [
        ((), "images: missing (or give --images FILE)"),
        (("--keep", "-1"), "error: --keep: must be 0 or more"),
    ],
)
def test_prune_registry_without_an_image_list_or_with_a_negative_keep_is_refused(
    tmp_path, listener, args, expected
):
    port, accepted = listener
    inventory = tmp_path / "hosts.yaml"
    images = "images: {tag: '2024.1', services: [keystone]}\n" if args else ""
    inventory.write_text(f"deploy_host: {{name: deploy1, address: 127.0.0.1, port: {port}}}\n{images}")

    result = fab("prune-registry", *args, inventory=inventory)

    assert result.returncode == 2
    assert result.stderr.strip().endswith(expected) and len(result.stderr.strip().splitlines()) == 1
    assert accepted == []


def test_status_exits_non_zero_when_a_host_is_unreachable(tmp_path):
    port = closed_port()
    inventory = tmp_path / "hosts.yaml"
    inventory.write_text(
        f"deploy_host: {{name: deploy1, address: 127.0.0.1, port: {port}}}\n"
        f"targets:\n  - {{name: node1, address: 127.0.0.2, port: {port}}}\n"
        "registry: {address: 127.0.0.1}\n"
    )

    shown = fab("status", inventory=inventory)
    as_json = fab("status", "--json", inventory=inventory)

    assert shown.returncode == 1, shown.stderr
    assert "RECAP" not in shown.stdout  # its own table, once
    rows = [line.split() for line in shown.stdout.splitlines() if line.startswith(("deploy1 ", "node1 "))]
    assert [row[:3] for row in rows] == [["deploy1", "deploy", "no:"], ["node1", "target", "no:"]]
    assert as_json.returncode == 1, as_json.stderr
    document = json.loads(as_json.stdout)
    assert document["failed"] is True
    assert [(host["host"], host["status"], host["reachable"]) for host in document["hosts"]] == [
        ("deploy1", "unreachable", False),
        ("node1", "unreachable", False),
    ]
    assert document["hosts"][1]["reason"] == f"SSH connection to root@127.0.0.2:{port} refused"


@pytest.mark.parametrize("task", TASKS)
def test_json_is_one_document_on_stdout_and_nothing_else(task, tmp_path):
    port = closed_port()
    inventory = tmp_path / "hosts.yaml"
    inventory.write_text(
        f"deploy_host: {{name: deploy1, address: 127.0.0.1, port: {port}}}\n"
        f"targets:\n  - {{name: node1, address: 127.0.0.2, port: {port}}}\n"
        "registry: {address: 127.0.0.1}\n"
        f"images: {{registry: '127.0.0.1:{port}', insecure: true, tag: '2024.1', services: [keystone]}}\n"
    )
    # export-images works on this machine: its upstream (a closed port) is what fails it.
    here = task == "export-images"

    done = fab(task, "--json", *(("--to", str(tmp_path / "bundle")) if here else ()), inventory=inventory)

    assert done.returncode == 1, done.stderr  # every host is unreachable
    document = json.loads(done.stdout)  # no progress line, no table around it
    assert document["task"] and document["failed"] is True
    assert {host["status"] for host in document["hosts"]} == ({"failed"} if here else {"unreachable"})
