"""Safe on a live cloud: fault injection on the lab, one test per scenario."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from . import upstream
from .conftest import (
    FAB,
    PROJECT,
    engine_of,
    inventory_variant,
    podman_registries,
    registry_of,
    reset_targets,
    trusted,
)

pytestmark = pytest.mark.e2e


def sha(hosts, name: str, path: str) -> str:
    return hosts.run(name, f"sha256sum {path} | cut -d' ' -f1")


@pytest.fixture
def all_targets(lab, hosts, deployed):
    names = [host.name for host in hosts.inventory.targets]
    reset_targets(hosts, names)
    return names


def test_one_node_down_the_others_are_configured(lab, hosts, fab, all_targets, tmp_path):
    down = all_targets[-1]
    lab.stop_node(down)
    try:
        result = fab("configure-targets")
    finally:
        lab.start_node(down)
    assert result.code == 1, result.output
    assert f"{down} | configure-targets | UNREACHABLE" in result.output
    for name in all_targets[:-1]:
        assert f"{name} | configure-targets | CHANGED" in result.output
        assert trusted(hosts, name, registry_of(hosts))
    again = fab("configure-targets")
    assert again.code == 0, again.output
    assert f"{down} | configure-targets | CHANGED" in again.output
    for name in all_targets[:-1]:
        assert f"{name} | configure-targets | OK" in again.output


def _known_hosts_with(tmp_path: Path, lines: list[str]) -> str:
    path = tmp_path / "known_hosts"
    path.write_text("".join(line + "\n" for line in lines))
    return str(path)


def _node1_with(**settings):
    def edit(data):
        for host in data["targets"]:
            if host["name"] == "node1":
                host.update(settings)

    return edit


@pytest.mark.parametrize(
    "case, expected",
    [
        ("refused", "SSH connection to root@{ip}:2222 refused"),
        ("wrong key", "authentication failed for root@{ip}:22 with key"),
        ("unknown host key", "unknown host key for root@{ip}:22 (not in"),  # with host_key_policy: strict
        ("changed host key", "host key of root@{ip}:22 has CHANGED"),
    ],
)
def test_ssh_problems_are_reported_per_host(lab, hosts, fab, deployed, tmp_path, case, expected):
    ip = lab.node_ip("node1")
    other_ip = lab.node_ip("node2")
    own = [line for line in lab.known_hosts.read_text().splitlines() if line.split()[0] == other_ip]
    if case == "refused":
        settings = {"port": 2222}
    elif case == "wrong key":
        key = tmp_path / "other_key"
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
        settings = {"key": str(key)}
    elif case == "unknown host key":
        settings = {"known_hosts": _known_hosts_with(tmp_path, []), "host_key_policy": "strict"}
    else:
        # node1's address with node2's key: what a man in the middle would show.
        settings = {"known_hosts": _known_hosts_with(tmp_path, [ip + " " + own[0].split(" ", 1)[1]])}
    inventory = inventory_variant(
        lab.inventory, tmp_path, targets=["node1", "node2"], edit=_node1_with(**settings)
    )
    result = fab("configure-targets", inventory=inventory)
    assert result.code == 1, result.output
    assert "node1 | configure-targets | UNREACHABLE | " + expected.format(ip=ip) in result.output
    assert (
        "node2 | configure-targets | OK" in result.output
        or "node2 | configure-targets | CHANGED" in result.output
    )


def test_a_corrupt_daemon_json_is_named_and_left_as_it_is(lab, hosts, fab, all_targets):
    hosts.run("node2", 'printf \'{"log-driver": "json-file",\' > /etc/docker/daemon.json')
    before = sha(hosts, "node2", "/etc/docker/daemon.json")
    result = fab("configure-targets")
    assert result.code == 1, result.output
    assert "node2 | configure-targets | FAILED | /etc/docker/daemon.json: not valid JSON" in result.output
    assert sha(hosts, "node2", "/etc/docker/daemon.json") == before
    for name in set(all_targets) - {"node2"}:
        assert f"{name} | configure-targets | CHANGED" in result.output
    hosts.run("node2", "rm /etc/docker/daemon.json")


def test_flags_in_docker_opts_get_ours_added_there_and_repair_moves_them(
    lab, hosts, fab, all_targets, tmp_path
):
    hosts.run(
        "node3",
        "echo 'DOCKER_OPTS=\"--insecure-registry legacy.invalid:5000\"' >> /etc/default/docker && "
        "systemctl restart docker",
    )
    inventory = inventory_variant(lab.inventory, tmp_path, targets=["node3"])
    # auto follows the host's method: ours goes next to the other flag (a restart, as flags need).
    followed = fab("configure-targets", inventory=inventory)
    assert followed.code == 0, followed.output
    assert "node3 | configure-targets | CHANGED" in followed.output and "Docker restart" in followed.output
    flags = hosts.run("node3", "ps -o args= -C dockerd")
    assert (
        "--insecure-registry legacy.invalid:5000" in flags
        and f"--insecure-registry {registry_of(hosts)}" in flags
    )
    assert hosts.run("node3", "cat /etc/docker/daemon.json 2>/dev/null || echo absent") == "absent"

    # Asked for daemon.json, the flags would stop dockerd next to it: refused, nothing written.
    before = sha(hosts, "node3", "/etc/default/docker")
    daemon_json = inventory_variant(
        lab.inventory, tmp_path, targets=["node3"], docker={"config_method": "daemon-json"}
    )
    refused = fab("configure-targets", inventory=daemon_json)
    assert refused.code == 1, refused.output
    assert (
        "node3 | configure-targets | FAILED | dockerd already gets --insecure-registry legacy.invalid:5000"
        in (refused.output)
    )
    assert "--repair" in refused.output
    assert sha(hosts, "node3", "/etc/default/docker") == before

    repaired = fab("configure-targets", "--repair", inventory=inventory)
    assert repaired.code == 0, repaired.output
    assert hosts.run("node3", "systemctl is-active docker") == "active"
    config = json.loads(hosts.run("node3", "cat /etc/docker/daemon.json"))
    assert config["insecure-registries"] == ["legacy.invalid:5000", registry_of(hosts)]
    assert "--insecure-registry" not in hosts.run("node3", "cat /etc/default/docker")
    assert trusted(hosts, "node3", registry_of(hosts))


REFUSE_DROPIN = "/etc/systemd/system/docker.service.d/zz-test-refuse.conf"
# dockerd refuses (on reload and on start) any config naming port 4000.
REFUSE_TEXT = """[Service]
ExecStartPre=/bin/sh -c '! grep -qs :4000 /etc/docker/daemon.json'
ExecReload=
ExecReload=/bin/sh -c '! grep -qs :4000 /etc/docker/daemon.json && kill -HUP $MAINPID'
"""


def test_docker_refusing_the_change_is_rolled_back(lab, hosts, fab, all_targets, tmp_path):
    inventory = inventory_variant(lab.inventory, tmp_path, targets=["node1"])
    try:
        hosts.write("node1", REFUSE_DROPIN, REFUSE_TEXT)
        hosts.run("node1", "systemctl daemon-reload && systemctl restart docker")
        hosts.run("node1", "echo '{\"debug\": false}' > /etc/docker/daemon.json && systemctl reload docker")
        before = sha(hosts, "node1", "/etc/docker/daemon.json")
        result = fab("configure-targets", inventory=inventory)
        assert result.code == 1, result.output
        assert "node1 | configure-targets | FAILED" in result.output
        assert "restored /etc/docker/daemon.json from backups; Docker running again" in result.output
        assert sha(hosts, "node1", "/etc/docker/daemon.json") == before
        assert hosts.run("node1", "systemctl is-active docker") == "active"
    finally:
        hosts.run(
            "node1",
            f"rm -f {REFUSE_DROPIN} /etc/docker/daemon.json; systemctl daemon-reload; "
            "systemctl reset-failed docker; systemctl restart docker",
        )


DAEMON_JSON = "/etc/docker/daemon.json"
# The apply script's temporary files for daemon.json (mktemp beside it, fabfile/transport/safewrite.py).
DAEMON_JSON_TMPS = "/etc/docker/.daemon.json.kolla-registry.*"
# A `sync` found first on root's PATH that never returns: the apply script's write stops after the
# temporary file is filled and before the rename.
STUCK_SYNC = "/usr/local/sbin/sync"
PENDING = "/var/lib/kolla-registry/pending"
# The blocked apply script and its subshells: every process that holds the host's lock open.
LOCK_HOLDERS = (
    "for p in /proc/[0-9]*; do ls -l $p/fd 2>/dev/null | grep -q /var/lib/kolla-registry/lock "
    "&& echo ${p#/proc/}; done"
)


def wait_until(what: str, done, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def test_an_interrupted_run_leaves_whole_files_and_the_next_run_finishes(lab, hosts, fab, all_targets):
    """fab is killed while node1's apply script is inside its write: after the backup and PENDING.

    A ``sync`` that never returns makes that write block before its rename, so
    the kill always lands mid-apply, never before or after it.
    """
    stuck, others = all_targets[0], all_targets[1:]
    registry = registry_of(hosts)
    old = '{"debug": false}'
    hosts.run(
        stuck,
        f"echo '{old}' > {DAEMON_JSON} && rm -f {DAEMON_JSON_TMPS} && "
        f"printf '#!/bin/sh\\nexec sleep 3600\\n' > {STUCK_SYNC} && chmod 755 {STUCK_SYNC}",
    )
    before = sha(hosts, stuck, DAEMON_JSON)
    env = {**os.environ, "KOLLA_REGISTRY_HOSTS": str(lab.inventory)}
    run = subprocess.Popen(
        [str(FAB), "configure-targets"],
        cwd=PROJECT,
        env=env,
        start_new_session=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )

    def in_the_write() -> bool:
        assert run.poll() is None, "fab ended before it reached the write"
        return hosts.run(stuck, f"ls {DAEMON_JSON_TMPS} 2>/dev/null | wc -l") == "1"

    try:
        wait_until(f"the temporary file beside {DAEMON_JSON} on {stuck}", in_the_write)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(run.pid, signal.SIGKILL)
        print(run.communicate()[0])
        # The remote script outlives its SSH session, blocked in its sync and holding the host lock.
        hosts.run(stuck, f"kill -KILL $({LOCK_HOLDERS}) 2>/dev/null", check=False)
        wait_until(
            "the blocked script to end",
            lambda: hosts.run(stuck, f"{LOCK_HOLDERS}; echo none", check=False) == "none",
            timeout=30,
        )
        hosts.run(stuck, f"rm -f {STUCK_SYNC}")
    # The killed write left its temporary file, whole or not: never the file itself.
    assert hosts.run(stuck, f"ls {DAEMON_JSON_TMPS} 2>/dev/null | wc -l") == "1"

    # The interrupted node: the old file, whole; its backup and the intent recorded before the write.
    assert sha(hosts, stuck, DAEMON_JSON) == before
    pending = hosts.run(stuck, f"cat {PENDING}").splitlines()
    assert len(pending) == 1 and pending[0].split()[:2] == ["reload", DAEMON_JSON], pending
    backup = pending[0].split()[2]
    assert hosts.run(stuck, f"cat {backup}") == old
    # The others were killed before, during or after their write: each file is absent or whole.
    for name in others:
        text = hosts.run(name, f"cat {DAEMON_JSON} 2>/dev/null || echo absent")
        assert text == "absent" or json.loads(text) == {"insecure-registries": [registry]}

    again = fab("configure-targets")
    assert again.code == 0, again.output
    assert f"{stuck} | configure-targets | CHANGED" in again.output
    assert json.loads(hosts.run(stuck, f"cat {DAEMON_JSON}")) == {
        "debug": False,
        "insecure-registries": [registry],
    }
    assert hosts.run(stuck, f"test -e {PENDING} || echo gone") == "gone"
    # The next run clears it (under the host's lock, no other run's write is in progress).
    assert hosts.run(stuck, f"ls {DAEMON_JSON_TMPS} 2>/dev/null | wc -l") == "0"
    for name in all_targets:
        assert trusted(hosts, name, registry)


def test_registry_images_survive_recreation(lab, hosts, fab, deployed, tmp_path):
    upstream.synced(fab, tmp_path, ["kolla-registry/kept:1"])
    moved = inventory_variant(lab.inventory, tmp_path, registry={"port": 4001})
    try:
        result = fab("create-registry", inventory=moved)
        assert result.code == 0, result.output
        assert "deploy1 | create-registry | CHANGED | docker rm -f registry" in result.output
        catalog = hosts.run("deploy1", "curl -s http://localhost:4001/v2/_catalog")
        assert "kolla-registry/kept" in json.loads(catalog)["repositories"]
    finally:
        back = fab("create-registry")
    assert back.code == 0, back.output
    assert "kolla-registry/kept" in hosts.run("deploy1", "curl -s http://localhost:4000/v2/_catalog")


def test_a_full_registry_volume_fails_pushes_but_keeps_serving(lab, hosts, fab, deployed, tmp_path):
    registry = registry_of(hosts)
    hosts.run(
        "deploy1",
        "docker volume inspect small >/dev/null 2>&1 || docker volume create --driver local "
        "--opt type=tmpfs --opt device=tmpfs --opt o=size=8m small",
    )
    small = inventory_variant(lab.inventory, tmp_path, registry={"volume": "small"})
    try:
        first = fab("deploy-host", inventory=small)
        assert first.code == 0, first.output
        # An image bigger than the volume: its copy fails, through the writer (nodes cannot push at all).
        upstream.start()
        upstream.release("kolla-registry/big", "1", 20_000_000)
        images = upstream.images_file(tmp_path, ["kolla-registry/big:1"], name="big.yaml")
        sync = fab("sync-images", "--images", str(images), inventory=small)
        assert sync.code == 1 and "kolla-registry/big:1" in sync.output, sync.output
        verify = fab("verify-registry", inventory=small)
        assert verify.code == 0, verify.output
        assert "pulled " + registry + "/kolla-registry/probe:latest" in verify.output
        assert "volume small:" in verify.output
    finally:
        restored = fab("create-registry")
    assert restored.code == 0, restored.output


def test_two_runs_at_once_lose_no_entry(lab, hosts, fab, all_targets, tmp_path):
    second = f"{hosts.inventory.deploy_host.address}:4001"
    other = inventory_variant(lab.inventory, tmp_path, registry={"port": 4001})
    env = {**os.environ}
    runs = [
        subprocess.Popen(
            [str(FAB), "configure-targets"],
            cwd=PROJECT,
            env={**env, "KOLLA_REGISTRY_HOSTS": str(path)},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for path in (lab.inventory, other)
    ]
    for run in runs:
        run.communicate(timeout=600)
    for name in all_targets:
        if engine_of(hosts, name) == "podman":
            assert sorted(podman_registries(hosts, name)) == sorted([registry_of(hosts), second])
            continue
        config = json.loads(hosts.run(name, "cat /etc/docker/daemon.json"))
        assert sorted(config["insecure-registries"]) == sorted([registry_of(hosts), second])
