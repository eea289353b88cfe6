"""The host's lock around sync-images' copy and prune-registry's job: the apply script's own lock, waited
for within a bound, never held by what the job leaves running. Run for real under sh, on a lock in a
temporary folder."""

from __future__ import annotations

import fcntl
import subprocess
import time

import pytest

from fabfile.actions.sync import SyncImages
from fabfile.images import host_lock
from fabfile.images.model import Image
from fabfile.images.sync_plan import SyncSource
from fabfile.model.errors import RemoteError
from fabfile.model.inventory import ImageSettings
from fabfile.model.marks import MARK, failure_reason
from fabfile.model.outcome import FAILED
from fabfile.model.paths import LOCK, STATE_DIR
from fabfile.model.plan import StepPlan
from fabfile.transport.apply import apply_script

from .factories import StandInRun, make_ctx, run_stand_ins


def run_locked(tmp_path, inner: str, wait: int = 1) -> subprocess.CompletedProcess:
    script = host_lock.locked(inner, wait).replace(STATE_DIR, str(tmp_path))
    return subprocess.run(["sh", "-c", script], capture_output=True, text=True, timeout=30, check=False)


def test_the_job_lock_is_the_one_the_apply_script_takes():
    applied = apply_script(StepPlan("x"), "20260101T000000Z")
    assert f"exec 9>{LOCK}" in applied and f"exec 9>{LOCK}" in host_lock.locked("true")


def test_a_free_lock_is_taken_and_the_job_s_processes_do_not_carry_it(tmp_path):
    done = run_locked(tmp_path, "echo inside; ls /proc/self/fd/9 2>/dev/null || echo 'no fd 9'")

    assert done.returncode == 0 and done.stdout.split() == ["inside", "no", "fd", "9"]
    assert (tmp_path / "lock").exists()


def test_a_held_lock_is_waited_for_then_the_job_fails_saying_so_having_run_nothing(tmp_path):
    (tmp_path / "lock").touch()
    with open(tmp_path / "lock") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        started = time.monotonic()
        done = run_locked(tmp_path, "echo RAN", wait=2)
        waited = time.monotonic() - started

    assert done.returncode == 1 and "RAN" not in done.stdout
    assert 1.5 <= waited < 10
    reason = failure_reason(done.stdout, done.stderr).replace(str(tmp_path), STATE_DIR)
    assert reason == f"another run holds {LOCK} (waited 2 s): nothing was changed; try again once it ends"
    assert host_lock.lock_not_taken(reason)


def test_the_job_waits_for_a_run_that_ends_and_then_runs(tmp_path):
    (tmp_path / "lock").touch()
    holder = subprocess.Popen(["flock", str(tmp_path / "lock"), "sleep", "1"])
    time.sleep(0.2)
    try:
        done = run_locked(tmp_path, "echo RAN", wait=10)
    finally:
        holder.wait(10)

    assert done.returncode == 0 and done.stdout.strip() == "RAN"


# --- sync-images' copy holds it ---------------------------------------------------------------------


KEYSTONE = Image("openstack.kolla/keystone", "2024.1")
SOURCE = SyncSource(ImageSettings(tag="2024.1", services=("keystone",)))


def answers(request: dict) -> dict:
    """The local registry lacks the image; the upstream has it."""
    found = [{"status": 404, "error": "HTTP 404"}, {"status": 200, "digest": "sha256:" + "1" * 64, "size": 10}]
    return {"manifests": found}


@pytest.mark.parametrize("held", [False, True])
def test_the_sync_copy_runs_under_the_host_s_lock_and_a_held_lock_fails_its_row(held):
    ctx = make_ctx()

    def copy(script: str) -> str:
        if held:
            raise RemoteError(f"exit 1: {host_lock.HELD} (waited 120 s): nothing was changed; try again once it ends", 1)
        return f'{MARK} plan 0 0 0 0\n{{"images": [{{"repo": "{KEYSTONE.path}", "tag": "2024.1", "status": "copied"}}]}}\n'

    def make(host, host_ctx):
        return StandInRun(host, host_ctx, answers={"manifests": answers}, answer=copy)

    result, runs = run_stand_ins(SyncImages([KEYSTONE], SOURCE), ctx, [ctx.inventory.deploy_host], make)

    [script] = runs["deploy1"].scripts
    lock_line = next(line for line in script.splitlines() if "flock" in line)
    assert lock_line.startswith(f"flock -w {host_lock.LOCK_WAIT} 9 ||")
    assert script.index("flock") < script.index("python3 - <<")
    [outcome] = result.outcomes
    if held:
        assert outcome.status == FAILED and f"another run holds {LOCK}" in outcome.message
    else:
        assert outcome.status != FAILED, outcome.message
