"""Plans and applying them: FileChange diffs, StepPlan summaries, and the apply shell (run for real)."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import time
from pathlib import Path

import pytest

from fabfile.model.marks import MARK, failure_reason
from fabfile.model.plan import RELOAD, RESTART, FileChange, StepPlan
from fabfile.transport import apply as change
from fabfile.transport.apply import apply_script, handler_script, rollback_script
from fabfile.transport.connection import bounded_shell

STAMP = "20240108T100000Z"
OLD = '{\n  "log-driver": "journald"\n}\n'
NEW = '{\n  "log-driver": "journald",\n  "insecure-registries": ["192.0.2.10:4000"]\n}\n'


# --- FileChange.diff -----------------------------------------------------------------------------


def test_diff_of_a_new_file_says_absent():
    diff = FileChange("/etc/docker/daemon.json", None, NEW).diff()

    lines = diff.splitlines()
    assert lines[0] == "--- before: /etc/docker/daemon.json (absent)"
    assert lines[1] == "+++ after: /etc/docker/daemon.json"
    assert all(line.startswith("+") for line in lines[3:])
    assert '+  "insecure-registries": ["192.0.2.10:4000"]' in lines


def test_diff_of_a_removed_file_says_removed():
    lines = FileChange(
        "/etc/systemd/system/docker.service.d/kolla.conf", "[Service]\nMountFlags=shared\n", None
    ).diff()

    assert lines.splitlines()[:2] == [
        "--- before: /etc/systemd/system/docker.service.d/kolla.conf",
        "+++ after: /etc/systemd/system/docker.service.d/kolla.conf (removed)",
    ]
    assert "-MountFlags=shared\n" in lines


def test_diff_of_an_edit_shows_only_what_changed():
    diff = FileChange("/etc/docker/daemon.json", OLD, NEW).diff()

    assert diff.startswith("--- before: /etc/docker/daemon.json\n+++ after: /etc/docker/daemon.json\n")
    assert '-  "log-driver": "journald"\n' in diff
    assert '+  "log-driver": "journald",\n' in diff
    assert "\n {\n" in diff  # unchanged context line


def test_diff_of_no_change_is_empty():
    assert FileChange("/etc/docker/daemon.json", OLD, OLD).diff() == ""


# --- StepPlan ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "plan, changed",
    [
        (StepPlan("s"), False),
        (StepPlan("s", notes=["already there"]), False),
        (StepPlan("s", error="broken"), False),
        (StepPlan("s", handler=RESTART), False),
        (StepPlan("s", files=[FileChange("/a", None, "x")]), True),
        (StepPlan("s", commands=["apt-get update -q"]), True),
    ],
)
def test_changed(plan, changed):
    assert plan.changed is changed


def test_summary_lists_files_commands_then_notes():
    plan = StepPlan(
        "install-docker",
        files=[FileChange("/etc/a.conf", "x", None), FileChange("/etc/b.conf", None, "y")],
        commands=["apt-get update -q"],
        notes=["Docker 20.10.24"],
    )

    assert plan.summary() == "remove /etc/a.conf; write /etc/b.conf; apt-get update -q; Docker 20.10.24"


def test_summary_shortens_long_and_multiline_commands():
    long = (
        "docker run -d -p 4000:5000 --restart=always --name registry -v registry:/var/lib/registry "
        "--label kolla-registry.spec=0123456789abcdef registry:2"
    )
    plan = StepPlan("s", commands=[long, "  set -e\n  echo two\n", "# apply pending Docker changes\n(\n"])

    first, second, third = plan.summary().split("; ")
    assert first == long[:97] + "..." and len(first) == 100
    assert second == "set -e"
    assert third == "apply pending Docker changes"


def test_summary_is_the_error_when_there_is_one():
    plan = StepPlan("s", files=[FileChange("/a", None, "x")], notes=["n"], error="Docker is not running here")

    assert plan.summary() == "Docker is not running here"


def test_summary_of_nothing_is_empty():
    assert StepPlan("s").summary() == ""


# --- apply_script, run with sh against files under a temporary folder ------------------------------


@pytest.fixture
def host(tmp_path, monkeypatch) -> Path:
    """Backups, state, pending and lock under ``tmp_path``; the plan's files are absolute paths there too."""
    monkeypatch.setattr(change, "BACKUP_DIR", str(tmp_path / "backups"))
    monkeypatch.setattr(change, "STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setattr(change, "PENDING", str(tmp_path / "state" / "pending"))
    monkeypatch.setattr(change, "LOCK", str(tmp_path / "state" / "lock"))
    return tmp_path


def run(plan: StepPlan) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["sh", "-c", apply_script(plan, STAMP)], capture_output=True, text=True, check=False
    )


def backup_of(host: Path, path: Path) -> Path:
    return host / "backups" / (str(path).strip("/").replace("/", "_") + "." + STAMP)


def test_run_replaces_a_file_keeping_its_mode_a_backup_and_the_pending_line(host):
    target = host / "etc" / "docker" / "daemon.json"
    target.parent.mkdir(parents=True)
    target.write_text(OLD)
    target.chmod(0o600)

    result = run(StepPlan("trust-registry", files=[FileChange(str(target), OLD, NEW)], handler=RELOAD))

    assert result.returncode == 0, result.stderr
    assert target.read_text() == NEW
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    backup = backup_of(host, target)
    assert backup.read_text() == OLD
    assert (host / "state" / "pending").read_text() == f"reload {target} {backup}\n"
    assert not Path(f"{target}.kolla-registry.tmp").exists()
    assert f"{MARK} wrote {target}" in result.stdout.splitlines()


def test_run_creates_a_new_file_and_its_folder(host):
    target = host / "etc" / "systemd" / "system" / "docker.service.d" / "kolla.conf"

    result = run(
        StepPlan(
            "install-docker",
            files=[FileChange(str(target), None, "[Service]\nMountFlags=shared\n")],
            handler=RESTART,
        )
    )

    assert result.returncode == 0, result.stderr
    assert target.read_text() == "[Service]\nMountFlags=shared\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o644
    assert (host / "state" / "pending").read_text() == f"restart {target} -\n"
    assert list((host / "backups").iterdir()) == []


def test_run_removes_a_file_and_keeps_its_backup(host):
    target = host / "kolla.conf"
    target.write_text("[Service]\nMountFlags=shared\n")

    result = run(
        StepPlan("install-docker", files=[FileChange(str(target), target.read_text(), None)], handler=RESTART)
    )

    assert result.returncode == 0, result.stderr
    assert not target.exists()
    assert backup_of(host, target).read_text() == "[Service]\nMountFlags=shared\n"
    assert (host / "state" / "pending").read_text() == f"restart {target} {backup_of(host, target)}\n"
    assert f"{MARK} removed {target}" in result.stdout


def test_run_without_handler_writes_no_pending(host):
    target = host / "daemon.json"

    result = run(StepPlan("s", files=[FileChange(str(target), None, NEW)]))

    assert result.returncode == 0, result.stderr
    assert target.read_text() == NEW
    assert not (host / "state" / "pending").exists()


def test_run_appends_one_pending_line_per_file_in_order(host):
    first, second = host / "default-docker", host / "daemon.json"
    first.write_text('DOCKER_OPTS="--insecure-registry 10.0.0.5:5000"\n')
    plan = StepPlan(
        "trust-registry",
        files=[
            FileChange(str(first), first.read_text(), "DOCKER_OPTS=''\n"),
            FileChange(str(second), None, NEW),
        ],
        handler=RESTART,
    )

    assert run(plan).returncode == 0
    assert (host / "state" / "pending").read_text() == (
        f"restart {first} {backup_of(host, first)}\nrestart {second} -\n"
    )
    assert first.read_text() == "DOCKER_OPTS=''\n" and second.read_text() == NEW


@pytest.mark.parametrize(
    "text",
    [
        "",
        "no newline at the end",
        "quotes ' \" and `backticks` $HOME $(id) \\ \\n %s %%\n",
        "unicode: Jörg — ✓\n",
        "x" * 60_000,  # the script travels as one `sh -c` argument: Linux caps those at 128 KiB
    ],
    ids=["empty", "no-newline", "shell-characters", "unicode", "large"],
)
def test_run_writes_any_content_exactly(host, text):
    target = host / "file"

    assert run(StepPlan("s", files=[FileChange(str(target), None, text)])).returncode == 0
    assert target.read_bytes() == text.encode()


def test_run_then_commands_see_the_new_files(host):
    target, seen = host / "daemon.json", host / "seen"

    result = run(StepPlan("s", files=[FileChange(str(target), None, NEW)], commands=[f"cp {target} {seen}"]))

    assert result.returncode == 0
    assert seen.read_text() == NEW


def test_run_stops_at_a_failing_command(host):
    result = run(StepPlan("s", commands=["false", f"touch {host / 'after'}"]))

    assert result.returncode != 0
    assert not (host / "after").exists()


@pytest.mark.parametrize("on_disk", ["edited by someone else\n", None])
def test_run_refuses_a_file_changed_since_the_facts_and_writes_nothing(host, on_disk):
    target = host / "daemon.json"
    if on_disk is not None:
        target.write_text(on_disk)
    planned_before = OLD if on_disk is not None else "was there when gathered\n"
    other = host / "other"
    plan = StepPlan(
        "trust-registry",
        files=[FileChange(str(other), None, "x"), FileChange(str(target), planned_before, NEW)],
        handler=RELOAD,
    )

    result = run(plan)

    assert result.returncode == change.CONFLICT_EXIT
    assert f"{MARK} conflict {target} changed since facts were gathered" in result.stdout
    assert (target.read_text() if target.exists() else None) == on_disk
    assert not other.exists()
    assert not (host / "state" / "pending").exists()


def test_run_conflicts_when_a_file_appeared_since_the_facts(host):
    target = host / "daemon.json"
    target.write_text("{}\n")

    result = run(StepPlan("s", files=[FileChange(str(target), None, NEW)]))

    assert result.returncode == change.CONFLICT_EXIT
    assert target.read_text() == "{}\n"


def test_run_twice_with_fresh_facts_is_harmless(host):
    target = host / "daemon.json"
    assert run(StepPlan("s", files=[FileChange(str(target), None, NEW)])).returncode == 0

    result = run(StepPlan("s", files=[FileChange(str(target), NEW, NEW)]))

    assert result.returncode == 0
    assert target.read_text() == NEW


def test_a_symlink_is_written_through_and_kept(host):
    real = host / "srv" / "daemon.json"
    real.parent.mkdir()
    real.write_text(OLD)
    link = host / "daemon.json"
    link.symlink_to(real)

    result = run(StepPlan("s", files=[FileChange(str(link), OLD, NEW)], handler=RELOAD))

    assert result.returncode == 0, result.stderr
    assert link.is_symlink() and link.resolve() == real
    assert real.read_text() == NEW
    assert backup_of(host, real).read_text() == OLD
    assert (host / "state" / "pending").read_text() == f"reload {real} {backup_of(host, real)}\n"


def test_two_writes_in_one_second_keep_both_backups_and_only_the_newest_are_kept(host, monkeypatch):
    target = host / "daemon.json"
    target.write_text("0")
    for text in "12345":
        before = target.read_text()
        result = subprocess.run(
            [
                "sh",
                "-c",
                apply_script(StepPlan("s", files=[FileChange(str(target), before, text)]), STAMP, keep=3),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 0, result.stderr

    kept = sorted(p.name for p in (host / "backups").iterdir())
    first = backup_of(host, target).name
    assert len(kept) == 3
    assert {(host / "backups" / name).read_text() for name in kept} == {"2", "3", "4"}
    assert all(name.startswith(first) for name in kept)


def test_new_content_never_has_a_wider_mode_than_the_file(host):
    target = host / "secret.json"
    target.write_text(OLD)
    target.chmod(0o600)
    # The temporary file is watched while it is written: its mode is the file's from the start.
    plan = StepPlan("s", files=[FileChange(str(target), OLD, NEW)])
    script = apply_script(plan, STAMP).replace(
        'base64 -d > "$t"', 'stat -c %a "$t" > ' + str(host / "mode-while-writing") + '; base64 -d > "$t"'
    )

    assert subprocess.run(["sh", "-c", script], capture_output=True, text=True, check=False).returncode == 0
    assert (host / "mode-while-writing").read_text().strip() == "600"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600


def test_a_checker_that_refuses_the_content_keeps_the_old_file(host):
    target = host / "daemon.json"
    target.write_text(OLD)
    plan = StepPlan("s", files=[FileChange(str(target), OLD, NEW, checker="false")])

    result = run(plan)

    assert result.returncode == 1
    assert f"{MARK} fail {target}: the new content was refused (false)" in result.stdout
    assert target.read_text() == OLD
    assert not Path(str(target) + ".kolla-registry.tmp").exists()


def test_commands_do_not_inherit_the_lock(host):
    plan = StepPlan("s", commands=["sh -c '[ ! -e /proc/self/fd/9 ]' || { echo lock inherited; exit 1; }"])

    result = run(plan)

    assert result.returncode == 0, result.stdout


# --- the Docker handler, run with stand-ins for systemctl and docker -----------------------------


def info_json(*insecure: str) -> str:
    """Docker's /info, compact, as its API and ``docker info --format '{{json .}}'`` print it (the part read)."""
    configs = {name: {"Name": name, "Mirrors": [], "Secure": False, "Official": False} for name in insecure}
    configs["docker.io"] = {"Name": "docker.io", "Mirrors": ["https://mirror.example"], "Secure": True, "Official": True}
    return json.dumps({"ID": "x", "RegistryConfig": {"IndexConfigs": configs}}, separators=(",", ":"))


@pytest.fixture
def docker_host(host, monkeypatch):
    """systemctl and docker that log their calls; docker info never shows the new registry as insecure."""
    bin_dir = host / "bin"
    bin_dir.mkdir()
    (bin_dir / "systemctl").write_text(
        f'#!/bin/sh\necho "$*" >> {host}/calls\ncase $1 in is-active) exit 0 ;; esac\nexit 0\n'
    )
    # /info as Docker's API and CLI give it: another registry insecure, never the new one.
    (bin_dir / "docker").write_text(f"#!/bin/sh\necho '{info_json('other:5000')}'\n")
    (bin_dir / "curl").write_text(f"#!/bin/sh\necho '{info_json('other:5000')}'\n")
    for tool in bin_dir.iterdir():
        tool.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    return host


def handled(host: Path, plan: StepPlan) -> subprocess.CompletedProcess:
    script = apply_script(plan, STAMP) + handler_script("192.0.2.10:4000", wait=1)
    return subprocess.run(["sh", "-c", script], capture_output=True, text=True, check=False)


def test_a_reload_that_did_not_take_is_rolled_back_with_a_reload_never_a_restart(docker_host):
    target = docker_host / "daemon.json"
    target.write_text(OLD)

    result = handled(docker_host, StepPlan("s", files=[FileChange(str(target), OLD, NEW)], handler=RELOAD))

    assert result.returncode == 3
    assert target.read_text() == OLD
    calls = (docker_host / "calls").read_text().splitlines()
    assert [c for c in calls if c.split()[0] in ("reload", "restart")] == ["reload docker", "reload docker"]
    assert f"{MARK} restored {target}" in result.stdout
    assert f"{MARK} docker reload-after-rollback" in result.stdout


def test_a_restore_that_fails_is_reported_not_claimed(docker_host):
    target = docker_host / "daemon.json"
    target.write_text(OLD)
    plan = StepPlan("s", files=[FileChange(str(target), OLD, NEW)], handler=RELOAD)
    script = (
        apply_script(plan, STAMP)
        + f"rm -rf {docker_host}/backups\n"
        + handler_script("192.0.2.10:4000", wait=1)
    )

    result = subprocess.run(["sh", "-c", script], capture_output=True, text=True, check=False)

    assert f"{MARK} not-restored {target}" in result.stdout
    assert f"{MARK} restored {target}" not in result.stdout
    assert f"could NOT restore {target}" in failure_reason(result.stdout, "")


def test_rolling_back_a_new_unit_disables_it(docker_host):
    # As the handler finds it after install-docker wrote the unit and enabled it.
    (docker_host / "state").mkdir(exist_ok=True)
    (docker_host / "state" / "pending").write_text(
        "restart /etc/systemd/system/kolla-registry-shared-run.service -\n"
    )

    result = subprocess.run(
        ["sh", "-c", handler_script("192.0.2.10:4000", wait=1)], capture_output=True, text=True, check=False
    )

    assert result.returncode == 3
    assert "disable kolla-registry-shared-run.service" in (docker_host / "calls").read_text()


@pytest.mark.parametrize("expect", [None, "192.0.2.10:4000"])
def test_handler_script_is_valid_shell(expect):
    # Only parsed: running it needs systemctl and dockerd.
    result = subprocess.run(
        ["sh", "-n"], input=handler_script(expect), capture_output=True, text=True, check=False
    )

    assert result.returncode == 0, result.stderr
    assert ("192\\.0\\.2\\.10:4000" in handler_script(expect)) is bool(expect)


def answered(host: Path, tool: str, text: str, plan: StepPlan) -> subprocess.CompletedProcess:
    """The handler after ``plan``, ``tool`` (curl or docker) printing ``text`` as /info; the other failing."""
    for name in ("curl", "docker"):
        (host / "bin" / name).write_text(f"#!/bin/sh\necho '{text}'\n" if name == tool else "#!/bin/sh\nexit 7\n")
    return handled(host, plan)


@pytest.mark.parametrize("tool", ["curl", "docker"])
def test_a_reload_that_took_is_seen_in_info_from_the_api_or_the_cli(docker_host, tool):
    target = docker_host / "daemon.json"
    target.write_text(OLD)
    plan = StepPlan("s", files=[FileChange(str(target), OLD, NEW)], handler=RELOAD)

    result = answered(docker_host, tool, info_json("other:5000", "192.0.2.10:4000"), plan)

    assert result.returncode == 0, result.stdout
    assert f"{MARK} docker reload" in result.stdout and target.read_text() == NEW


@pytest.mark.parametrize(
    "shown",
    [
        info_json("192.0.2.10:40000"),  # another port
        info_json("192x0.2.10:4000"),  # a dot is a dot, not any character
        info_json(),  # nothing insecure
        info_json("192.0.2.10:4000").replace('"Secure":false', '"Secure":true'),
    ],
)
def test_only_the_registrys_own_insecure_entry_counts_as_taken(docker_host, shown):
    target = docker_host / "daemon.json"
    target.write_text(OLD)
    plan = StepPlan("s", files=[FileChange(str(target), OLD, NEW)], handler=RELOAD)

    result = answered(docker_host, "curl", shown, plan)

    assert result.returncode == 3 and target.read_text() == OLD


def test_rollback_restores_what_pending_lists_and_clears_it(host):
    target = host / "daemon.json"
    target.write_text(OLD)
    new_file = host / "new.conf"
    plan = StepPlan(
        "s", files=[FileChange(str(target), OLD, NEW), FileChange(str(new_file), None, "x")], handler=RELOAD
    )
    assert run(plan).returncode == 0

    result = subprocess.run(["sh", "-c", rollback_script()], capture_output=True, text=True, check=False)

    assert result.returncode == 0, result.stderr
    assert target.read_text() == OLD and not new_file.exists()
    assert f"{MARK} restored {target}" in result.stdout
    assert not (host / "state" / "pending").exists()


def test_a_script_that_runs_too_long_is_stopped_on_the_host_and_frees_the_lock(tmp_path):
    lock = tmp_path / "lock"
    script = f"exec 9>{lock}\nflock 9\nsleep 30\n"
    started = time.monotonic()

    done = subprocess.run(
        ["sh", "-c", bounded_shell(1)], input=script, capture_output=True, text=True, check=False, timeout=30
    )

    assert done.returncode == 124 and time.monotonic() - started < 10
    assert subprocess.run(["flock", "-n", str(lock), "true"], check=False).returncode == 0
    assert script not in bounded_shell(1)  # the script itself never reaches a command line


def test_a_secret_gets_its_own_mode_even_over_a_wider_file(host):
    target = host / "passwords.yml"
    target.write_text("a: 1\n")
    target.chmod(0o644)

    result = run(StepPlan("s", files=[FileChange(str(target), "a: 1\n", "a: 2\n", mode="600", secret=True)]))

    assert result.returncode == 0, result.stderr
    assert stat.S_IMODE(target.stat().st_mode) == 0o600 and target.read_text() == "a: 2\n"


@pytest.mark.parametrize(("handler", "resets"), [(RELOAD, False), (RESTART, True)])
def test_only_a_restart_clears_the_units_start_count_first(docker_host, handler, resets):
    target = docker_host / "daemon.json"
    target.write_text(OLD)
    plan = StepPlan("s", files=[FileChange(str(target), OLD, NEW)], handler=handler)

    result = answered(docker_host, "curl", info_json("192.0.2.10:4000"), plan)

    assert result.returncode == 0, result.stdout
    calls = (docker_host / "calls").read_text().splitlines()
    assert ("reset-failed docker" in calls) is resets
    assert f"{handler} docker" in calls
