"""Root writes no file through a path another user controls (issue 19, item 1): the apply shell, run for real.

The tests run as root, as the tool does on a host; ``nobody`` plays the user who
owns a folder (kolla-ansible's quickstart: ``chown $USER /etc/kolla``) and plants
links in it. Each "victim" is a root file outside that folder, which must never change.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from fabfile.model.marks import MARK, failure_reason
from fabfile.model.plan import RELOAD, FileChange, StepPlan
from fabfile.transport import apply as change
from fabfile.transport.apply import apply_script, handler_script, rollback_script
from tests.conftest import needs_root

STAMP = "20240108T100000Z"
OLD, NEW = "docker_registry: old\n", "docker_registry: 192.0.2.10:4000\n"
NOBODY, NOGROUP = 65534, 65534



@pytest.fixture(autouse=True)
def _as_root() -> None:
    needs_root()


@pytest.fixture
def host(monkeypatch) -> Iterator[Path]:
    """A root folder in /tmp that other users may enter (as /etc is), with the tool's backups, state,
    pending and lock in it; the plan's files are absolute paths there too."""
    root = Path(tempfile.mkdtemp(prefix="kolla-registry-test.", dir="/tmp"))
    root.chmod(0o755)
    monkeypatch.setattr(change, "BACKUP_DIR", str(root / "backups"))
    monkeypatch.setattr(change, "STATE_DIR", str(root / "state"))
    monkeypatch.setattr(change, "PENDING", str(root / "state" / "pending"))
    monkeypatch.setattr(change, "LOCK", str(root / "state" / "lock"))
    yield root
    shutil.rmtree(root)


@pytest.fixture
def victim(host) -> Path:
    """A root file only root may read, outside any folder another user owns."""
    path = host / "root-only" / "shadow"
    path.parent.mkdir()
    path.write_text("root:secret-hash:19000::::::\n")
    path.chmod(0o640)
    return path


def user_folder(host: Path, name: str = "kolla", mode: int = 0o755) -> Path:
    folder = host / "etc" / name
    folder.mkdir(parents=True)
    folder.chmod(mode)
    os.chown(folder, NOBODY, NOGROUP)
    return folder


def run(plan: StepPlan, write_as: tuple[tuple[str, str], ...] = ()) -> subprocess.CompletedProcess:
    script = apply_script(plan, STAMP, write_as=write_as)
    return subprocess.run(["sh", "-c", script], capture_output=True, text=True, check=False)


def refusal(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 1, result.stdout + result.stderr
    return failure_reason(result.stdout, result.stderr)


def untouched(victim: Path) -> bool:
    info = victim.stat()
    return victim.read_text() == "root:secret-hash:19000::::::\n" and info.st_uid == 0 and stat.S_IMODE(info.st_mode) == 0o640


# --- refused: a folder or link on the path that another user controls ---------------------------------


def test_a_file_in_a_folder_another_user_owns_is_refused_naming_path_and_owner(host, victim):
    folder = user_folder(host)
    target = folder / "globals.yml"
    target.write_text(OLD)
    os.chown(target, NOBODY, NOGROUP)

    reason = refusal(run(StepPlan("kolla-globals", files=[FileChange(str(target), OLD, NEW)])))

    assert reason == (
        f"{target}: {folder} is owned by nobody, not root: refused "
        f"(write_as: {{{folder}: nobody}} in the inventory writes there as nobody)"
    )
    assert target.read_text() == OLD and untouched(victim)
    assert sorted(p.name for p in folder.iterdir()) == ["globals.yml"]


def test_a_link_planted_at_the_old_temporary_name_is_never_followed(host, victim):
    folder = user_folder(host)
    target = folder / "globals.yml"
    (folder / "globals.yml.kolla-registry.tmp").symlink_to(victim)

    refusal(run(StepPlan("kolla-globals", files=[FileChange(str(target), None, NEW)])))

    assert untouched(victim) and not target.exists()


def test_a_dangling_link_planted_at_the_file_is_refused_and_its_target_never_made(host):
    folder = user_folder(host)
    sudoers = host / "sudoers.d"
    sudoers.mkdir()
    link = folder / "passwords.yml"
    link.symlink_to(sudoers / "zz")
    os.lchown(link, NOBODY, NOGROUP)

    reason = refusal(run(StepPlan("kolla-globals", files=[FileChange(str(link), None, "x: 1\n", mode="600", secret=True)])))

    assert f"{folder} is owned by nobody, not root: refused" in reason
    assert list(sudoers.iterdir()) == []


def test_a_link_another_user_owns_in_a_root_folder_is_refused(host, victim):
    folder = host / "etc" / "docker"
    folder.mkdir(parents=True)
    link = folder / "daemon.json"
    link.symlink_to(victim)
    os.lchown(link, NOBODY, NOGROUP)

    reason = refusal(run(StepPlan("s", files=[FileChange(str(link), victim.read_text(), NEW)])))

    assert reason == f"{link}: {link} is owned by nobody, not root: refused"
    assert untouched(victim)


def test_a_root_link_to_a_folder_another_user_owns_is_refused(host, victim):
    real = user_folder(host, "kolla-real")
    link = host / "etc" / "kolla"
    link.symlink_to(real)

    reason = refusal(run(StepPlan("s", files=[FileChange(str(link / "globals.yml"), None, NEW)])))

    assert reason.startswith(f"{link}/globals.yml: {real} is owned by nobody, not root: refused")
    assert list(real.iterdir()) == []


@pytest.mark.parametrize(
    "mode, group, expected",
    [
        (0o777, 0, "is writable by others (mode 777)"),
        (0o775, NOGROUP, "is writable by its group nogroup (mode 775)"),
    ],
)
def test_a_root_folder_others_may_write_is_refused(host, victim, mode, group, expected):
    folder = host / "etc" / "docker"
    folder.mkdir(parents=True)
    folder.chmod(mode)
    os.chown(folder, 0, group)

    reason = refusal(run(StepPlan("s", files=[FileChange(str(folder / "daemon.json"), None, NEW)])))

    assert reason == f"{folder / 'daemon.json'}: {folder} {expected}: refused"
    assert list(folder.iterdir()) == []


def test_a_refusal_comes_before_any_file_is_written(host):
    first = host / "first.json"
    folder = user_folder(host)
    plan = StepPlan("s", files=[FileChange(str(first), None, NEW), FileChange(str(folder / "globals.yml"), None, NEW)])

    refusal(run(plan))

    assert not first.exists() and not (host / "state" / "pending").exists()


def test_backups_and_state_in_a_folder_others_may_write_are_refused(host, monkeypatch):
    shared = host / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    monkeypatch.setattr(change, "BACKUP_DIR", str(shared / "backups"))

    reason = refusal(run(StepPlan("s", files=[FileChange(str(host / "daemon.json"), None, NEW)])))

    assert reason == f"{shared}/backups: {shared} is writable by others (mode 777): refused"
    assert not (host / "daemon.json").exists()


# --- still written: root's own links, sticky folders, unique temporary files -------------------------


def test_a_file_under_a_sticky_root_folder_and_root_links_is_written(host):
    sticky = host / "tmp"
    sticky.mkdir()
    sticky.chmod(0o1777)
    real = sticky / "real" / "daemon.json"
    real.parent.mkdir()
    real.write_text(OLD)
    link = host / "daemon.json"
    link.symlink_to(Path("tmp") / "real" / ".." / "real" / "daemon.json")

    result = run(StepPlan("s", files=[FileChange(str(link), OLD, NEW)], handler=RELOAD))

    assert result.returncode == 0, result.stdout + result.stderr
    assert link.is_symlink() and real.read_text() == NEW
    assert (host / "state" / "pending").read_text().split()[:2] == [RELOAD, str(real)]
    assert sorted(p.name for p in real.parent.iterdir()) == ["daemon.json"]


def test_a_killed_runs_temporary_file_is_cleared_and_the_new_one_is_unique(host):
    target = host / "daemon.json"
    stale = host / ".daemon.json.kolla-registry.AbC123"
    stale.write_text("half")
    script = apply_script(StepPlan("s", files=[FileChange(str(target), None, NEW)]), STAMP).replace(
        'base64 -d > "$t"', 'echo "$t" > ' + str(host / "temporary") + '; base64 -d > "$t"'
    )

    assert subprocess.run(["sh", "-c", script], capture_output=True, check=False).returncode == 0
    used = Path((host / "temporary").read_text().strip())
    assert used.parent == host and used.name.startswith(".daemon.json.kolla-registry.") and used != stale
    assert not stale.exists() and not used.exists() and target.read_text() == NEW


# --- backups: root's alone, never wider than the new file ------------------------------------------


def test_the_backup_of_a_world_readable_file_made_secret_is_not_world_readable(host):
    target = host / "passwords.yml"
    target.write_text("a: 1\n")
    target.chmod(0o644)

    result = run(StepPlan("s", files=[FileChange(str(target), "a: 1\n", "a: 2\n", mode="600", secret=True)]))

    assert result.returncode == 0, result.stderr
    backup = host / "backups" / (str(target).strip("/").replace("/", "_") + "." + STAMP)
    assert backup.read_text() == "a: 1\n"
    assert stat.S_IMODE(backup.stat().st_mode) == 0o600
    assert stat.S_IMODE((host / "backups").stat().st_mode) == 0o700


# --- write_as: the folder's owner writes it, and reaches only what it could ------------------------


def test_with_write_as_the_owner_writes_the_file_and_root_keeps_the_backup(host):
    folder = user_folder(host)
    target = folder / "globals.yml"
    target.write_text(OLD)
    os.chown(target, NOBODY, NOGROUP)
    target.chmod(0o664)

    result = run(StepPlan("s", files=[FileChange(str(target), OLD, NEW)]), write_as=((str(folder), "nobody"),))

    assert result.returncode == 0, result.stdout + result.stderr
    info = target.stat()
    assert target.read_text() == NEW and (info.st_uid, stat.S_IMODE(info.st_mode)) == (NOBODY, 0o664)
    backup = host / "backups" / (str(target).strip("/").replace("/", "_") + "." + STAMP)
    assert backup.read_text() == OLD and backup.stat().st_uid == 0
    assert sorted(p.name for p in folder.iterdir()) == ["globals.yml"]


def test_with_write_as_a_planted_link_reaches_only_what_the_owner_could(host, victim):
    folder = user_folder(host)
    link = folder / "globals.yml"
    link.symlink_to(victim)
    os.lchown(link, NOBODY, NOGROUP)

    result = run(
        StepPlan("s", files=[FileChange(str(link), victim.read_text(), NEW)]), write_as=((str(folder), "nobody"),)
    )

    assert refusal(result) == f"{link}: cannot be read as nobody"
    assert untouched(victim) and list((host / "backups").iterdir()) == []


def test_with_write_as_a_new_file_the_owner_cannot_make_fails_and_makes_nothing(host, victim):
    folder = user_folder(host)
    link = folder / "passwords.yml"
    link.symlink_to(victim.parent / "zz")
    os.lchown(link, NOBODY, NOGROUP)

    reason = refusal(run(StepPlan("s", files=[FileChange(str(link), None, NEW)]), write_as=((str(folder), "nobody"),)))

    assert reason.startswith(f"{link}: as nobody: mktemp: ") and reason.endswith("Permission denied")
    assert sorted(p.name for p in victim.parent.iterdir()) == ["shadow"]


def test_write_as_a_user_the_host_lacks_is_named(host):
    folder = user_folder(host)

    reason = refusal(
        run(StepPlan("s", files=[FileChange(str(folder / "a"), None, NEW)]), write_as=((str(folder), "no-such-user"),))
    )

    assert reason == f"{folder / 'a'}: write_as user no-such-user does not exist on this host"


# --- restoring: the same checks, as the same writer --------------------------------------------------


def test_a_restore_into_a_folder_that_became_another_users_is_refused_and_said(host, victim):
    folder = host / "etc" / "docker"
    folder.mkdir(parents=True)
    target = folder / "daemon.json"
    target.write_text(OLD)
    assert run(StepPlan("s", files=[FileChange(str(target), OLD, NEW)], handler=RELOAD)).returncode == 0
    os.chown(folder, NOBODY, NOGROUP)
    target.unlink()
    target.symlink_to(victim)

    result = subprocess.run(["sh", "-c", rollback_script()], capture_output=True, text=True, check=False)

    assert f"{MARK} not-restored {target} ({target}: {folder} is owned by nobody, not root: refused" in result.stdout
    assert untouched(victim)


def test_a_restore_as_the_owner_puts_the_old_file_back_as_that_owner(host, monkeypatch):
    folder = user_folder(host)
    target = folder / "daemon.json"
    target.write_text(OLD)
    os.chown(target, NOBODY, NOGROUP)
    plan = StepPlan("s", files=[FileChange(str(target), OLD, NEW)], handler=RELOAD)
    assert run(plan, write_as=((str(folder), "nobody"),)).returncode == 0
    assert (host / "state" / "pending").read_text().split()[3] == f"nobody:{folder}"

    result = subprocess.run(["sh", "-c", rollback_script()], capture_output=True, text=True, check=False)

    assert f"{MARK} restored {target}" in result.stdout, result.stdout + result.stderr
    assert target.read_text() == OLD and target.stat().st_uid == NOBODY


def test_the_handler_restores_through_the_same_checks(host, monkeypatch):
    bin_dir = host / "bin"
    bin_dir.mkdir()
    for tool, body in (("systemctl", "exit 0"), ("docker", "echo other:5000=false")):
        (bin_dir / tool).write_text(f"#!/bin/sh\n{body}\n")
        (bin_dir / tool).chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    target = host / "daemon.json"
    target.write_text(OLD)
    plan = StepPlan("s", files=[FileChange(str(target), OLD, NEW)], handler=RELOAD)
    script = apply_script(plan, STAMP) + handler_script("192.0.2.10:4000", wait=1)

    result = subprocess.run(["sh", "-c", script], capture_output=True, text=True, check=False)

    assert result.returncode == 3 and target.read_text() == OLD
    assert f"{MARK} restored {target}" in result.stdout
    assert sorted(p.name for p in host.iterdir() if p.name.startswith(".daemon.json")) == []
