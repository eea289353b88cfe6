"""The lab is real: Debian hosts with systemd, sshd, their own keys and addresses, and clear errors."""

import json
import os
import subprocess
import sys
import tarfile
import time
import urllib.request
from pathlib import Path

import paramiko
import pytest
import yaml

from tests.lab import Lab, LabError, paths
from tests.lab.config import layout, suite_targets, target_profiles

pytestmark = pytest.mark.e2e

PROJECT = Path(__file__).resolve().parent.parent
LAYOUT = {name: profile.name for name, profile in layout(suite_targets()).items()}
HOSTS = list(LAYOUT)
TARGETS = HOSTS[1:]
SUITE = {name: profile.split("-")[0] for name, profile in LAYOUT.items()}
DOCKER_TARGETS = [name for name in TARGETS if LAYOUT[name].endswith("-docker")]
PODMAN_TARGETS = [name for name in TARGETS if LAYOUT[name].endswith("-podman")]


def lab_cli(
    *args: str, env: dict[str, str] | None = None, timeout: float = 900
) -> subprocess.CompletedProcess:
    """python -m tests.lab, as a person would run it."""
    return subprocess.run(
        [sys.executable, "-m", "tests.lab", *args],
        cwd=PROJECT,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def host_key(lab: Lab, name: str) -> str:
    return lab.docker("exec", name, "cat", "/etc/ssh/ssh_host_ed25519_key.pub").stdout.split()[1]


def assert_alive(lab: Lab, name: str) -> None:
    """Strict SSH in, systemd running, its own name and address (eth0's first, as on a real host)."""
    shown = lab.run(name, "systemctl is-system-running; hostname; hostname -I").stdout.split()
    assert shown[:2] == ["running", name]
    assert shown[2] == lab.node_ip(name)


@pytest.mark.parametrize("name", HOSTS)
def test_host_is_a_running_debian_machine(lab, name):
    assert_alive(lab, name)
    release = lab.run(name, ". /etc/os-release; echo $ID $VERSION_CODENAME").stdout.split()
    assert release == ["debian", SUITE[name]]


@pytest.mark.parametrize("name", DOCKER_TARGETS)
def test_target_runs_debian_docker_under_systemd(lab, name):
    assert lab.run(name, "systemctl is-enabled docker; systemctl is-active docker").stdout.split() == [
        "enabled",
        "active",
    ]
    version = lab.run(name, "docker info --format '{{.ServerVersion}}'").stdout.strip()
    assert version.split(".")[0] == {"bookworm": "20", "trixie": "26"}[SUITE[name]]


@pytest.mark.parametrize("name", DOCKER_TARGETS)
def test_eth0_is_numbered_before_the_interfaces_made_at_boot(lab, name):
    """As on a real host, whatever index the lab engine gave eth0: docker0 comes after it (hostname -I)."""
    shown = lab.run(name, "cat /sys/class/net/eth0/ifindex /sys/class/net/docker0/ifindex; ls /run/netns 2>/dev/null")
    eth0, docker0, *leftovers = shown.stdout.split()
    assert int(eth0) < int(docker0) and leftovers == []
    assert lab.run(name, "systemctl is-active lab-ifindex").stdout.strip() == "active"


@pytest.mark.parametrize("name", PODMAN_TARGETS)
def test_podman_target_has_podman_and_no_docker(lab, name):
    assert lab.run(name, "podman --version").stdout.split()[:2] == ["podman", "version"]
    assert lab.run(name, "command -v docker dockerd", check=False).returncode != 0


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("2", ["bookworm-docker", "bookworm-docker"]),
        ("trixie-podman:1,bookworm-docker:2", ["trixie-podman", "bookworm-docker", "bookworm-docker"]),
    ],
)
def test_target_spec_is_a_count_or_profiles_in_order(spec, expected):
    assert [profile.name for profile in target_profiles(spec)] == expected


@pytest.mark.parametrize(
    ("spec", "message"),
    [("sid-docker:1", "unknown profile 'sid-docker'"), ("trixie-docker", "needs a count"), ("0", "between 1")],
)
def test_bad_target_spec_names_what_is_wrong(spec, message):
    with pytest.raises(LabError, match=message):
        target_profiles(spec)


def test_deploy_host_has_no_docker_and_debian_sources(lab):
    # Other tests deploy onto deploy1; the lab's promise is about a fresh one.
    lab.reset_node("deploy1")
    assert lab.run("deploy1", "command -v docker dockerd", check=False).returncode != 0
    assert lab.run("deploy1", "dpkg-query -W docker.io", check=False).returncode != 0
    sources = lab.run("deploy1", "cat /etc/apt/sources.list").stdout
    assert "deb http://deb.debian.org/debian bookworm main" in sources


def test_operator_logs_in_with_the_lab_key_and_sudoes_without_password(lab):
    assert lab.run("node1", "id -un; sudo -n id -u", user="operator").stdout.split() == ["operator", "0"]


def test_host_keys_are_checked_strictly(lab, tmp_path):
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    with pytest.raises(paramiko.SSHException, match="not found in known_hosts"):
        lab.ssh("deploy1", known_hosts=empty)
    swapped = tmp_path / "swapped"
    swapped.write_text(f"{lab.node_ip('deploy1')} ssh-ed25519 {host_key(lab, 'node1')}\n")
    with pytest.raises(paramiko.BadHostKeyException):
        lab.ssh("deploy1", known_hosts=swapped)


def test_every_host_has_its_own_host_keys_in_known_hosts(lab):
    known = [line.split() for line in lab.known_hosts.read_text().splitlines()]
    for name in HOSTS:
        assert [lab.node_ip(name), "ssh-ed25519", host_key(lab, name)] in known
    assert len({host_key(lab, name) for name in HOSTS}) == len(HOSTS)


def test_inventory_describes_the_lab(lab):
    inventory = yaml.safe_load(lab.inventory.read_text())
    assert inventory["defaults"] == {
        "user": "root",
        "port": 22,
        "key": str(lab.key),
        "known_hosts": str(lab.known_hosts),
    }
    assert inventory["deploy_host"] == {"name": "deploy1", "address": lab.node_ip("deploy1")}
    assert inventory["targets"] == [{"name": name, "address": lab.node_ip(name)} for name in TARGETS]
    registry = inventory["registry"]
    assert (registry["port"], registry["image"], registry["volume"], registry["network"]) == (
        4000,
        "registry:2",
        "registry",
        "auto",
    )
    assert inventory["docker"] == {"source": "distro", "config_method": "auto"}
    with tarfile.open(registry["image_archive"]) as archive:
        manifest = json.load(archive.extractfile("manifest.json"))
    assert manifest[0]["RepoTags"] == ["registry:2"]


def test_registry_image_serves_an_empty_catalog(lab):
    address = "10.77.0.250"
    lab.docker("rm", "-f", "lab-test-registry", check=False)
    lab.docker(
        "run", "-d", "--name", "lab-test-registry", "--network", "kolla-lab", "--ip", address, "registry:2"
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://{address}:5000/v2/_catalog", timeout=5) as answer:
                    assert json.load(answer) == {"repositories": []}
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
    finally:
        lab.docker("rm", "-f", "-v", "lab-test-registry", check=False)


def test_hosts_reach_the_debian_mirror_and_nothing_else_outside(lab):
    mirror = (
        "curl -sS -m 20 -o /dev/null -w '%{http_code}' http://deb.debian.org/debian/dists/bookworm/Release"
    )
    assert lab.run("node1", mirror).stdout == "200"
    assert lab.run("node1", "curl -sS -m 5 -o /dev/null http://1.1.1.1/", check=False).returncode != 0
    assert lab.run("node1", f"timeout 5 bash -c '</dev/tcp/{lab.node_ip('node2')}/22'").returncode == 0


def test_stopped_node_starts_again_with_the_same_host_key(lab):
    key = host_key(lab, "node1")
    lab.stop_node("node1")
    assert {row.name: row.state for row in lab.status()}["node1"] == "exited"
    lab.start_node("node1")
    assert_alive(lab, "node1")
    assert host_key(lab, "node1") == key


def test_reset_node_gives_a_fresh_deploy_host_with_new_host_keys(lab):
    lab.run("deploy1", "touch /root/was-here")
    key = host_key(lab, "deploy1")
    lab.reset_node("deploy1")
    assert host_key(lab, "deploy1") != key
    assert_alive(lab, "deploy1")
    assert lab.run("deploy1", "test -e /root/was-here", check=False).returncode != 0


def test_up_adds_targets_and_a_smaller_up_removes_them(lab):
    extra = f"node{len(TARGETS) + 1}"
    grown = lab_cli("up", "--targets", f"{suite_targets()},bookworm-podman:1")
    assert grown.returncode == 0, grown.stderr
    assert grown.stdout.splitlines()[-1] == str(lab.inventory)
    assert extra in {target["name"] for target in yaml.safe_load(lab.inventory.read_text())["targets"]}
    assert_alive(lab, extra)
    assert lab.run(extra, ". /etc/os-release; echo $VERSION_CODENAME; podman --version").stdout.split()[:2] == [
        "bookworm",
        "podman",
    ]
    assert {row.name: row.profile for row in lab.status()}[extra] == "bookworm-podman"
    shrunk = lab_cli("up", "--targets", suite_targets())
    assert shrunk.returncode == 0, shrunk.stderr
    assert [row.name for row in lab.status()] == HOSTS


def test_up_repairs_what_a_half_finished_up_left(lab):
    lab.docker("stop", "node2")
    lab.docker("rm", "-f", "node3")
    lab.docker("create", "--name", "node3", "lab-node:bookworm", "sleep", "infinity")  # not the lab's
    lab.inventory.unlink()
    paths().archive.unlink()
    repaired = lab_cli("up", "--targets", suite_targets())
    assert repaired.returncode == 0, repaired.stderr
    assert Path(repaired.stdout.splitlines()[-1]) == lab.inventory
    assert lab.inventory.exists() and paths().archive.exists()
    assert {row.name: row.state for row in lab.status()} == dict.fromkeys(HOSTS, "running")
    for name in HOSTS:
        assert_alive(lab, name)


def test_status_lists_every_host_with_its_state_address_and_profile(lab):
    shown = lab_cli("status")
    assert shown.returncode == 0, shown.stderr
    rows = [line.split() for line in shown.stdout.splitlines()[: len(HOSTS)]]
    assert rows == [[name, "running", lab.node_ip(name), LAYOUT[name]] for name in HOSTS]


def test_up_as_another_user_says_to_run_it_as_root():
    command = [sys.executable, "-m", "tests.lab", "up"]
    if os.geteuid() == 0:
        command = ["runuser", "-u", "nobody", "--", python_for_nobody(), "-m", "tests.lab", "up"]
    done = subprocess.run(
        command,
        cwd=PROJECT,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode != 0
    assert done.stdout == ""
    assert len(done.stderr.splitlines()) == 1
    assert "needs root" in done.stderr and "sudo" in done.stderr


def python_for_nobody() -> str:
    """The venv's python may live under /root, which nobody cannot enter."""
    tried = subprocess.run(
        ["runuser", "-u", "nobody", "--", sys.executable, "-c", ""], capture_output=True, check=False
    )
    return sys.executable if tried.returncode == 0 else "/usr/bin/python3"


@pytest.mark.parametrize(
    "breakage",
    [{"daemon.json": "{not json"}, {"KOLLA_LAB_DOCKERD_ARGS": "--no-such-flag"}],
    ids=["broken-daemon-json", "bad-dockerd-argument"],
)
def test_engine_that_will_not_start_is_a_clear_error_naming_its_log(lab, tmp_path, breakage):
    root = tmp_path / "lab"
    env = {"KOLLA_LAB_ROOT": str(root), "KOLLA_LAB_ENGINE_TIMEOUT": "30"}
    if "daemon.json" in breakage:
        (root / "engine").mkdir(parents=True)
        (root / "engine" / "daemon.json").write_text(breakage["daemon.json"])
    else:
        env.update(breakage)
    started = time.monotonic()
    done = lab_cli("up", env=env, timeout=120)
    assert done.returncode != 0
    assert time.monotonic() - started < 60
    errors = [line for line in done.stderr.splitlines() if line.startswith("lab: error:")]
    assert len(errors) == 1 and errors[0] == done.stderr.strip().splitlines()[-1]
    error = errors[0]
    assert error.startswith("lab: error: the lab's Docker engine would not start")
    assert str(root / "engine" / "dockerd.log") in error
    assert not (root / "engine" / "docker.pid").exists()
    assert [row.name for row in lab.status()] == HOSTS  # the main lab is untouched
