"""The garbage collection shell, run under sh against a stand-in docker: order, rollback, bounded waits."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from fabfile.model.marks import failure_reason, marks
from fabfile.registry import collect
from fabfile.registry.collect import Container, collect_script, prepare_script, restore_script

from .factories import changed, container, docker_host, make_ctx

# docker as far as the scripts use it; every call logged, the container's label kept in a file.
FAKE_DOCKER = """#!{python}
import os, pathlib, sys
state = pathlib.Path(os.environ["STATE"])
args = sys.argv[1:]
label = state / "label"
def log(line):
    with open(state / "log", "a") as out:
        out.write(line + "\\n")
if args[:2] == ["rm", "-f"]:
    log("rm")
    label.unlink(missing_ok=True)
elif args[0] == "run":
    read_only = any("REGISTRY_STORAGE_MAINTENANCE_READONLY" in arg for arg in args)
    log("run read-only" if read_only else "run normal")
    if os.environ.get("FAIL_RUN") in ("all", "read-only" if read_only else "normal"):
        print("docker: Error response from daemon: port is already allocated", file=sys.stderr)
        sys.exit(125)
    label.write_text(next(a for a in args if a.startswith("kolla-registry.spec=")).split("=", 1)[1])
elif args[0] == "exec":
    log(" ".join(args))
    if os.environ.get("SLOW_GC"):
        import time
        time.sleep(int(os.environ["SLOW_GC"]))
    if os.environ.get("FAIL_GC"):
        print("failed to garbage collect: filesystem: Path not found", file=sys.stderr)
        sys.exit(1)
    (pathlib.Path(os.environ["VOLUME"]) / "old-blob").unlink(missing_ok=True)
    print("openstack.kolla/keystone: marking manifest sha256:aa")
    print("3 blobs marked, 2 blobs and 0 manifests eligible for deletion")
    print("blob eligible for deletion: sha256:bb")
elif args[:2] == ["volume", "inspect"]:
    print(os.environ["VOLUME"])
elif args[0] == "inspect":
    if not label.exists():
        sys.exit(1)
    print(label.read_text() if "Labels" in args[2] else "true")
"""
# GET /v2/ answers while a container runs (unless told it never does, or not read-only).
FAKE_PYTHON = """#!/bin/sh
[ -f "$STATE/label" ] || exit 1
case "$ANSWERS:$(cat "$STATE/label")" in never:*) exit 1 ;; not-read-only:*-read-only) exit 1 ;; esac
exit 0
"""


@pytest.fixture
def host(tmp_path, monkeypatch):
    """A deployment host in tmp_path: stand-ins on PATH, a volume with an old blob, the state folder."""
    bin_dir, state, volume = tmp_path / "bin", tmp_path / "state", tmp_path / "volume"
    for folder in (bin_dir, state, volume):
        folder.mkdir()
    (bin_dir / "docker").write_text(FAKE_DOCKER.format(python=sys.executable))
    (bin_dir / "python3").write_text(FAKE_PYTHON)
    for tool in ("docker", "python3"):
        (bin_dir / tool).chmod(0o755)
    (volume / "kept-blob").write_bytes(b"k" * 1000)
    (volume / "old-blob").write_bytes(b"o" * 50_000)
    monkeypatch.setattr(collect, "STATE_DIR", str(tmp_path / "lib"))
    monkeypatch.setattr(collect, "GC_PENDING", str(tmp_path / "lib" / "gc-pending"))
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "STATE": str(state), "VOLUME": str(volume)}
    return tmp_path, env


def registry() -> Container:
    ctx = make_ctx()
    return Container.of(docker_host(container=container()), ctx)


def run(script: str, env: dict, **more: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["sh", "-c", script], env={**env, **more}, capture_output=True, text=True, check=False, timeout=60
    )


def calls(tmp_path) -> list[str]:
    log = tmp_path / "state" / "log"
    return log.read_text().splitlines() if log.exists() else []


def normal_label() -> str:
    return registry().spec


def test_collect_runs_read_only_then_puts_the_normal_registry_back_and_says_what_it_freed(host):
    tmp_path, env = host
    (tmp_path / "state" / "label").write_text(normal_label())

    before = run(prepare_script(registry(), 2), env)
    done = run(collect_script(registry(), True, 2, 60), env)

    assert done.returncode == 0, done.stdout + done.stderr
    assert calls(tmp_path) == [
        "rm",
        "run read-only",
        "exec registry /bin/registry garbage-collect --delete-untagged /etc/docker/registry/config.yml",
        "rm",
        "run normal",
    ]
    assert (tmp_path / "state" / "label").read_text() == normal_label()
    assert int(marks(before.stdout, "used-before")[0]) - int(marks(done.stdout, "used-after")[0]) == 50_000
    assert marks(done.stdout, "collected") == [
        "3 blobs marked, 2 blobs and 0 manifests eligible for deletion"
    ]
    assert not (tmp_path / "lib" / "gc-pending").exists()


def test_prepare_marks_garbage_pending_until_it_is_collected(host):
    tmp_path, env = host

    run(prepare_script(registry(), 2), env)

    assert (tmp_path / "lib" / "gc-pending").exists()


def test_with_a_manifest_list_kept_untagged_manifests_are_not_collected(host):
    tmp_path, env = host

    run(collect_script(registry(), False, 2, 60), env)

    assert "exec registry /bin/registry garbage-collect /etc/docker/registry/config.yml" in calls(tmp_path)


def test_a_failed_collection_puts_the_normal_registry_back_then_fails(host):
    tmp_path, env = host
    run(prepare_script(registry(), 2), env)

    done = run(collect_script(registry(), True, 2, 60), env, FAIL_GC="1")

    assert done.returncode == 1
    assert calls(tmp_path)[-2:] == ["rm", "run normal"]
    assert (tmp_path / "state" / "label").read_text() == normal_label()
    assert failure_reason(done.stdout, done.stderr) == (
        "garbage-collect failed: failed to garbage collect: filesystem: Path not found; "
        "the registry is back to normal"
    )
    assert (tmp_path / "lib" / "gc-pending").exists()  # the next run collects


def test_a_registry_that_does_not_answer_read_only_is_put_back_after_a_bounded_wait(host):
    tmp_path, env = host
    started = time.monotonic()

    done = run(collect_script(registry(), True, 2, 60), env, ANSWERS="not-read-only")

    assert time.monotonic() - started < 10
    assert "exec" not in " ".join(calls(tmp_path))
    assert calls(tmp_path)[-1] == "run normal"
    assert failure_reason(done.stdout, done.stderr) == (
        "registry did not answer read-only within 2 s; the registry is back to normal"
    )


def test_a_read_only_registry_that_cannot_start_is_put_back(host):
    tmp_path, env = host

    done = run(collect_script(registry(), True, 2, 60), env, FAIL_RUN="read-only")

    assert calls(tmp_path) == ["rm", "run read-only", "rm", "run normal"]
    assert failure_reason(done.stdout, done.stderr).startswith(
        "could not start registry read-only: docker: Error response from daemon: port is already allocated; "
        "the registry is back to normal"
    )


def test_when_nothing_starts_the_row_says_the_registry_could_not_be_put_back(host):
    _, env = host

    done = run(collect_script(registry(), True, 2, 60), env, FAIL_RUN="all")

    assert failure_reason(done.stdout, done.stderr).endswith(
        "the registry could NOT be put back (docker: Error response from daemon: port is already allocated): "
        "run fab deploy-host"
    )


def test_restore_leaves_a_normal_registry_that_answers_alone(host):
    tmp_path, env = host
    (tmp_path / "state" / "label").write_text(normal_label())

    done = run(restore_script(registry(), 2), env)

    assert done.returncode == 0 and marks(done.stdout, "restored") == ["already"]
    assert calls(tmp_path) == []


@pytest.mark.parametrize("label", ["read-only", "gone"])
def test_restore_puts_back_a_registry_left_read_only_or_removed(host, label):
    tmp_path, env = host
    if label == "read-only":
        (tmp_path / "state" / "label").write_text(normal_label() + "-read-only")

    done = run(restore_script(registry(), 2), env)

    assert done.returncode == 0 and marks(done.stdout, "restored") == [""]
    assert calls(tmp_path) == ["rm", "run normal"]
    assert (tmp_path / "state" / "label").read_text() == normal_label()


def test_the_container_is_checked_where_hosts_reach_it_with_its_ca_when_secure():
    ctx = make_ctx({"tls": "self-signed"})
    secure = Container.of(changed(docker_host(), tls={"fingerprint": "AB"}), ctx)

    assert secure.url == "https://192.0.2.10:4000/v2/"
    assert secure.ca == "/etc/docker/certs.d/192.0.2.10:4000/ca.crt"
    assert " -e REGISTRY_HTTP_TLS_CERTIFICATE=" in secure.read_only
    assert registry().url == "http://192.0.2.10:4000/v2/" and registry().ca == ""


def test_a_collection_stopped_by_the_hosts_time_limit_puts_the_normal_registry_back(host):
    tmp_path, env = host
    started = time.monotonic()

    # As run_as_root runs every script: stopped (its process group) after the time limit.
    done = subprocess.run(
        ["timeout", "-k", "10", "2", "sh", "-c", collect_script(registry(), True, 2, 60)],
        env={**env, "SLOW_GC": "30"},
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )

    assert time.monotonic() - started < 8
    assert calls(tmp_path)[-2:] == ["rm", "run normal"]
    assert failure_reason(done.stdout, done.stderr) == "stopped; the registry is back to normal"
