"""The deletes-and-collection shell, run under sh against a stand-in docker: the writer for the deletes,
then the collector; the read-only registry is never touched; every wait bounded; nothing left running."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from fabfile.model.inventory import S3Store
from fabfile.model.marks import failure_reason, marks
from fabfile.registry import collect, writer
from fabfile.registry.collect import Collector, cleanup_script, collect_script, prepare_script
from fabfile.registry.writer import with_writer

from .factories import make_ctx

# docker as far as the scripts use it: every call logged ("rm NAME", "run NAME ARGS..."); a running
# container is a file named after it in $STATE.
FAKE_DOCKER = """#!{python}
import os, pathlib, sys
state = pathlib.Path(os.environ["STATE"])
args = sys.argv[1:]
def log(line):
    with open(state / "log", "a") as out:
        out.write(line + "\\n")
def named():
    return args[args.index("--name") + 1]
if args[:2] == ["rm", "-f"]:
    for name in args[2:]:
        log("rm " + name)
        (state / name).unlink(missing_ok=True)
elif args[0] == "run":
    name = named()
    log("run " + name + " " + " ".join(a for a in args if a in ("garbage-collect", "--delete-untagged")))
    if os.environ.get("FAIL_RUN") == name:
        print("docker: Error response from daemon: no space left on device", file=sys.stderr)
        sys.exit(125)
    (state / name).write_text("running")
    if "garbage-collect" in args:
        if os.environ.get("SLOW_GC"):
            import time
            time.sleep(int(os.environ["SLOW_GC"]))
        if os.environ.get("FAIL_GC"):
            print("failed to garbage collect: filesystem: Path not found", file=sys.stderr)
            sys.exit(1)
        (pathlib.Path(os.environ["VOLUME"]) / "old-blob").unlink(missing_ok=True)
        print("openstack.kolla/keystone: marking manifest sha256:aa")
        print("3 blobs marked, 2 blobs and 0 manifests eligible for deletion")
        (state / name).unlink()
elif args[:2] == ["volume", "inspect"]:
    print(os.environ["VOLUME"])
"""
# The writer answers on its socket while it runs (unless told it never does).
FAKE_PYTHON = """#!/bin/sh
[ -f "$STATE/registry-writer" ] && [ "${WRITER_ANSWERS:-}" != never ]
"""
# The deletes program: says what the writer was doing while it ran.
DELETES = '[ -f "$STATE/registry-writer" ] && echo \'{"deleted": [{"status": 202}], "current": {}}\''


@pytest.fixture
def host(tmp_path, monkeypatch):
    """A deployment host in tmp_path: stand-ins on PATH, a volume with an old blob, the state folders."""
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
    monkeypatch.setattr(writer, "WRITER_DIR", str(tmp_path / "run"))
    monkeypatch.setattr(writer, "WRITER_SOCKET", str(tmp_path / "run" / "registry.sock"))
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "STATE": str(state), "VOLUME": str(volume)}
    return tmp_path, env


def run(script: str, env: dict, **more: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["sh", "-c", script], env={**env, **more}, capture_output=True, text=True, check=False, timeout=60
    )


def calls(tmp_path) -> list[str]:
    log = tmp_path / "state" / "log"
    return [line.rstrip() for line in log.read_text().splitlines()] if log.exists() else []


def running(tmp_path) -> list[str]:
    return sorted(path.name for path in (tmp_path / "state").iterdir() if path.name.startswith("registry"))


def test_deletes_go_through_the_writer_then_the_collector_runs_and_the_registry_is_never_touched(host):
    tmp_path, env = host
    ctx = make_ctx()

    before = run(prepare_script(Collector.of(ctx)), env)
    done = run(collect_script(ctx, True, 2, 60, DELETES), env)

    assert done.returncode == 0, done.stdout + done.stderr
    assert calls(tmp_path) == [
        "rm registry-writer",
        "run registry-writer",
        "rm registry-writer",
        "rm registry-gc",
        "run registry-gc garbage-collect --delete-untagged",
    ]
    assert marks(done.stdout, "deletes") == ['{"deleted": [{"status": 202}], "current": {}}']
    # The read-only registry nodes pull from: neither removed nor started.
    assert not any(call.split()[1] == "registry" for call in calls(tmp_path))
    assert running(tmp_path) == []
    assert int(marks(before.stdout, "used-before")[0]) - int(marks(done.stdout, "used-after")[0]) == 50_000
    assert marks(done.stdout, "collected") == ["3 blobs marked, 2 blobs and 0 manifests eligible for deletion"]
    assert not (tmp_path / "lib" / "gc-pending").exists()


def test_the_writer_s_folder_is_root_s_alone():
    ctx = make_ctx()
    script = with_writer(ctx, "true", 2)

    assert "( umask 077; mkdir -p /run/kolla-registry ) && chmod 700 /run/kolla-registry" in script
    assert "-v /run/kolla-registry:/run/kolla-registry -e REGISTRY_HTTP_NET=unix" in script
    # No TCP port: no -p, no host network for a volume's writer.
    [run] = [line for line in script.splitlines() if "docker run" in line]
    assert " -p " not in run and "--network none" in run


def test_with_nothing_to_delete_only_the_collector_runs(host):
    tmp_path, env = host

    run(prepare_script(Collector.of(make_ctx())), env)
    done = run(collect_script(make_ctx(), False, 2, 60), env)

    assert done.returncode == 0
    assert calls(tmp_path) == ["rm registry-gc", "run registry-gc garbage-collect"]


def test_a_failed_collection_fails_says_the_registry_kept_serving_and_leaves_garbage_pending(host):
    tmp_path, env = host
    run(prepare_script(Collector.of(make_ctx())), env)

    done = run(collect_script(make_ctx(), True, 2, 60), env, FAIL_GC="1")

    assert done.returncode == 1
    assert failure_reason(done.stdout, done.stderr) == (
        "garbage-collect failed: failed to garbage collect: filesystem: Path not found; the registry kept serving"
    )
    assert running(tmp_path) == []
    assert (tmp_path / "lib" / "gc-pending").exists()  # the next run collects


def test_a_writer_that_does_not_answer_fails_in_bounded_time_deletes_and_collects_nothing(host):
    tmp_path, env = host
    started = time.monotonic()

    done = run(collect_script(make_ctx(), True, 2, 60, DELETES), env, WRITER_ANSWERS="never")

    assert time.monotonic() - started < 10
    assert done.returncode == 1
    assert failure_reason(done.stdout, done.stderr) == (
        f"the writer registry-writer did not answer on {tmp_path}/run/registry.sock within 2 s"
    )
    assert not marks(done.stdout, "deletes") and "run registry-gc garbage-collect" not in calls(tmp_path)
    assert running(tmp_path) == []


def test_a_writer_that_cannot_start_is_one_line(host):
    tmp_path, env = host

    done = run(collect_script(make_ctx(), True, 2, 60, DELETES), env, FAIL_RUN="registry-writer")

    assert failure_reason(done.stdout, done.stderr) == (
        "could not start the writer registry-writer: docker: Error response from daemon: no space left on device"
    )
    assert "run registry-gc garbage-collect --delete-untagged" not in calls(tmp_path)


def test_the_writer_goes_whatever_the_body_does_and_its_status_is_the_script_s(host):
    tmp_path, env = host

    done = run(f"( {with_writer(make_ctx(), 'echo body; exit 3', 2)} )\necho status=$?", env)

    assert "body" in done.stdout and "status=3" in done.stdout
    assert calls(tmp_path)[-1] == "rm registry-writer" and running(tmp_path) == []


def test_a_collection_stopped_by_the_hosts_time_limit_removes_the_collector(host):
    tmp_path, env = host
    started = time.monotonic()

    # As run_as_root runs every script: stopped (its process group) after the time limit.
    done = subprocess.run(
        ["timeout", "-k", "10", "2", "sh", "-c", collect_script(make_ctx(), True, 2, 60)],
        env={**env, "SLOW_GC": "30"},
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )

    assert time.monotonic() - started < 8
    assert calls(tmp_path)[-1] == "rm registry-gc" and running(tmp_path) == []
    assert failure_reason(done.stdout, done.stderr) == "stopped; the collector was removed, the registry kept serving"


def test_a_lost_job_s_cleanup_removes_the_writer_and_the_collector(host):
    tmp_path, env = host
    for name in ("registry-writer", "registry-gc"):
        (tmp_path / "state" / name).write_text("running")

    done = run(cleanup_script(make_ctx()), env)

    assert marks(done.stdout, "cleaned") == [""] and running(tmp_path) == []


def test_on_s3_the_collector_and_the_writer_use_the_store_and_no_volume(tmp_path):
    secret = tmp_path / "secret"
    secret.write_text("s3cr3t\n")
    store = S3Store("https://rgw.internal:8080", "kolla", "us-east-1", "KEY", str(secret))
    ctx = make_ctx({"s3": store})

    collector = Collector.of(ctx)

    assert collector.volume == ""
    assert "--network host --env-file /etc/kolla-registry/registry.env" in collector.run
    assert "--env-file /etc/kolla-registry/registry.env" in with_writer(ctx, "true", 2)
    assert "-v registry:" not in collector.run + with_writer(ctx, "true", 2)
