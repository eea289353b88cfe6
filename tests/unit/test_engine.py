"""The engine with no SSH: converge, conflict re-plan, check mode, handlers, isolation, one recap.

A host run here executes scripts with a stand-in that records them and
answers as a host would: these tests are about the engine's decisions.
"""

from __future__ import annotations

import socket

import pytest
from fabfile.engine.fanout import HostTask, fan_out, finish
from invoke.exceptions import Exit

from fabfile.engine.access import RegistryAccess
from fabfile.engine.converge import MAX_ROUNDS, converge, run_steps
from fabfile.engine.hostrun import HostRun
from fabfile.engines.docker.config import ConfigError
from fabfile.model.context import Modes, StepContext
from fabfile.model.errors import RemoteError
from fabfile.model.facts import HostFacts
from fabfile.model.inventory import Host
from fabfile.model.marks import CONFLICT_EXIT
from fabfile.model.outcome import CHANGED, FAILED, OK, SKIPPED, UNREACHABLE
from fabfile.model.plan import RELOAD, RESTART, FileChange, StepPlan, merged_handler

from .factories import host_facts, make_ctx, make_inventory

CONFIG = "/etc/x.conf"


class ScriptedRun(HostRun):
    """A host run whose scripts go to ``answer`` (a function of the script) instead of SSH."""

    def __init__(self, host, ctx, config=None, sections=()) -> None:
        super().__init__(host, ctx, config, sections)
        self.scripts: list[str] = []
        self.gathered = 0
        self.on_disk = "old"
        self.answer = lambda script: ""

    def run(self, script: str) -> str:
        self.scripts.append(script)
        return self.answer(script)

    def gather(self, sections=None) -> HostFacts:
        self.gathered += 1
        self.facts = host_facts(files={CONFIG: self.on_disk})
        return self.facts


def scripted(modes: Modes | None = None) -> ScriptedRun:
    run = ScriptedRun(
        Host("node1", "192.0.2.11"), StepContext(make_inventory(), "192.0.2.10", modes or Modes())
    )
    run.gather()
    return run


def wants_new(facts: HostFacts, ctx) -> StepPlan:
    """Write "new" to CONFIG unless it has it; reload Docker when it does."""
    plan = StepPlan("write-config")
    if facts.files.get(CONFIG) != "new":
        plan.files.append(FileChange(CONFIG, facts.files.get(CONFIG), "new"))
        plan.handler = RELOAD
    else:
        plan.notes.append("has new")
    return plan


def applies(run: ScriptedRun):
    def answer(script: str) -> str:
        run.on_disk = "new"
        return ""

    return answer


def test_a_change_is_applied_once_then_the_host_is_gathered_and_planned_again():
    run = scripted()
    run.answer = applies(run)

    outcome, plan = converge(run, wants_new)

    assert (outcome.status, outcome.message) == (CHANGED, f"write {CONFIG}")
    assert len(run.scripts) == 1 and run.gathered == 2
    assert plan.handler == RELOAD


def test_nothing_to_do_is_ok_and_runs_nothing():
    run = scripted()
    run.on_disk = "new"
    run.gather()

    outcome, _ = converge(run, wants_new)

    assert (outcome.status, outcome.message) == (OK, "has new")
    assert run.scripts == []


def test_a_conflict_gathers_again_and_plans_from_the_new_facts():
    run = scripted()
    seen: list[str | None] = []

    def planner(facts, ctx):
        seen.append(facts.files.get(CONFIG))
        return wants_new(facts, ctx)

    def conflict_then_apply(script: str) -> str:
        if len(run.scripts) == 1:
            run.on_disk = "theirs"  # another run wrote the file meanwhile
            raise RemoteError("exit 75: conflict", CONFLICT_EXIT)
        run.on_disk = "new"
        return ""

    run.answer = conflict_then_apply

    outcome, _ = converge(run, planner)

    assert outcome.status == CHANGED
    assert seen[:2] == ["old", "theirs"]
    assert len(run.scripts) == 2


def test_files_that_keep_changing_fail_after_a_bounded_number_of_rounds():
    run = scripted()

    def always_conflicts(script: str) -> str:
        raise RemoteError("exit 75: conflict", CONFLICT_EXIT)

    run.answer = always_conflicts

    outcome, _ = converge(run, wants_new)

    assert outcome.status == FAILED and "kept changing" in outcome.message
    assert len(run.scripts) == MAX_ROUNDS


def test_a_failed_apply_fails_the_step_with_the_hosts_reason():
    run = scripted()

    def fails(script: str) -> str:
        raise RemoteError("exit 1: disk full", 1)

    run.answer = fails

    outcome, _ = converge(run, wants_new)

    assert (outcome.status, outcome.message) == (FAILED, f"write {CONFIG}: exit 1: disk full")


def test_check_mode_reports_the_change_and_runs_nothing():
    run = scripted(Modes(check=True))

    outcome, _ = converge(run, wants_new)

    assert (outcome.status, outcome.message) == (CHANGED, f"write {CONFIG}")
    assert run.scripts == []


def test_in_check_mode_a_step_that_fails_after_a_change_is_skipped_and_ends_the_run():
    run = scripted(Modes(check=True))
    later: list[str] = []

    def needs_the_change(facts, ctx):
        return StepPlan("needs-it", error="Docker is not running here")

    def never(facts, ctx):
        later.append("ran")
        return StepPlan("never")

    assert run_steps(run, [wants_new, needs_the_change, never]) is False
    assert [(o.step, o.status) for o in run.outcomes] == [("write-config", CHANGED), ("needs-it", SKIPPED)]
    assert run.outcomes[1].message == "depends on the changes above: Docker is not running here"
    assert later == []


def test_outside_check_mode_a_failing_step_fails():
    run = scripted()
    assert run_steps(run, [lambda facts, ctx: StepPlan("broken", error="no")]) is False
    assert run.outcomes[0].status == FAILED


def test_later_steps_hear_which_handler_earlier_changes_notified():
    run = scripted()
    run.answer = applies(run)
    heard: list[str | None] = []

    def listens(facts, ctx):
        heard.append(ctx.notified)
        return StepPlan("restart-docker")

    run_steps(run, [wants_new, listens])
    assert heard == [RELOAD]


@pytest.mark.parametrize(
    "first, second, merged",
    [
        (None, None, None),
        (RELOAD, None, RELOAD),
        (None, RESTART, RESTART),
        (RELOAD, RESTART, RESTART),
        (RESTART, RELOAD, RESTART),
        (RELOAD, RELOAD, RELOAD),
    ],
)
def test_one_handler_for_two_notifications(first, second, merged):
    assert merged_handler(first, second) == merged


def test_merging_plans_keeps_every_change_and_the_stronger_handler():
    plan = StepPlan("node", files=[FileChange("/a", None, "a")], handler=RELOAD)
    plan.merge(StepPlan("unit", files=[FileChange("/b", None, "b")], handler=RESTART, notes=["why"]))
    assert [f.path for f in plan.files] == ["/a", "/b"] and plan.handler == RESTART and plan.notes == ["why"]


# --- fan-out: every host isolated, one recap ---------------------------------------------------


class Connected(ScriptedRun):
    """Connects to nothing: the fan-out's isolation is under test, not SSH."""

    def __init__(self, host, ctx, config=None, sections=()) -> None:
        super().__init__(host, ctx, config, sections)
        self.connection = type("NoConnection", (), {"open": lambda self: None, "close": lambda self: None})()


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_a_host_that_raises_fails_alone_and_the_others_finish():
    hosts = [Host(f"node{i}", f"192.0.2.{i}") for i in (1, 2, 3)]
    inventory = make_inventory({"address": "192.0.2.10"})

    def work(run):
        if run.host.name == "node2":
            raise RuntimeError("a bug")
        run.report(run.outcome("work", OK, "done", 0.0))

    task = HostTask(make_ctx(), work, lambda ctx: (), RegistryAccess(inventory), step="work")
    task.run_class = Connected

    outcomes = fan_out(hosts, task, parallel=2)

    assert [(o.host, o.status, o.message) for o in outcomes] == [
        ("node1", OK, "done"),
        ("node2", FAILED, "RuntimeError: a bug"),
        ("node3", OK, "done"),
    ]


def test_an_unreachable_host_is_its_own_row():
    inventory = make_inventory({"address": "192.0.2.10"})
    host = Host("down", "127.0.0.1", port=closed_port())
    task = HostTask(make_ctx(), lambda run: None, lambda ctx: (), RegistryAccess(inventory), step="work")

    [outcome] = fan_out([host], task, parallel=1)

    assert outcome.status == UNREACHABLE
    assert outcome.message == f"SSH connection to root@127.0.0.1:{host.port} refused"


def test_a_registry_address_that_cannot_be_learnt_fails_each_host_before_it_is_touched():
    deploy = Host("deploy1", "127.0.0.1", port=closed_port())
    inventory = make_inventory()
    inventory = inventory.__class__(inventory.path, deploy, (Host("node1", "192.0.2.1"),))
    touched: list[str] = []
    task = HostTask(
        make_ctx(), lambda run: touched.append(run.host.name), lambda ctx: (), RegistryAccess(inventory)
    )
    task.run_class = Connected

    [outcome] = fan_out(inventory.targets, task, parallel=1)

    assert outcome.status == FAILED
    assert outcome.message.startswith("cannot learn the registry from deploy1: SSH connection")
    assert outcome.message.endswith(f"set registry.address in {inventory.path}")
    assert touched == []


def test_one_recap_for_every_host_and_exit_1_when_any_failed(capsys):
    rows = [
        Connected(Host(name, "192.0.2.1"), make_ctx()).outcome("work", status, "", 0.0)
        for name, status in (("node1", OK), ("node2", UNREACHABLE), ("node3", CHANGED))
    ]

    with pytest.raises(Exit) as caught:
        finish(rows)

    shown = capsys.readouterr().out
    assert caught.value.code == 1
    assert shown.count("RECAP") == 1
    assert all(f"{name} " in shown for name in ("node1", "node2", "node3"))
    finish([rows[0], rows[2]])  # nobody failed: no exit


def test_a_file_that_cannot_be_read_safely_is_never_edited():
    run = scripted()
    run.gather()
    run.facts.unreadable[CONFIG] = "not UTF-8 text"

    outcome, _ = converge(run, wants_new)

    assert outcome.status == FAILED
    assert outcome.message == f"{CONFIG}: not UTF-8 text: cannot be edited safely; left as it is"
    assert run.scripts == []


def test_a_planner_that_cannot_read_a_file_fails_its_step_with_the_reason():

    def unreadable(facts, ctx):
        raise ConfigError("/etc/default/docker: DOCKER_OPTS cannot be read (No closing quotation)")

    outcome, _ = converge(scripted(), unreadable)

    assert (outcome.status, outcome.message) == (
        FAILED,
        "/etc/default/docker: DOCKER_OPTS cannot be read (No closing quotation)",
    )


def test_a_step_that_fails_after_an_earlier_one_wrote_rolls_the_unapplied_change_back():
    run = scripted()

    def answer(script: str) -> str:
        if "restore_pending" in script:
            return f"::kolla-registry:: restored {CONFIG}\n"
        run.on_disk = "new"
        return ""

    run.answer = answer

    def breaks(facts, ctx):
        return StepPlan("unit", error="the unit cannot be read")

    assert run_steps(run, [wants_new, breaks]) is False
    assert run.outcomes[-1].message == f"the unit cannot be read; rolled back {CONFIG}"
    assert "restore_pending" in run.scripts[-1]


def test_nothing_is_rolled_back_when_nothing_was_written_for_a_handler():
    run = scripted()
    assert run_steps(run, [lambda facts, ctx: StepPlan("broken", error="no")]) is False
    assert run.outcomes[0].message == "no" and run.scripts == []


def test_a_host_that_raises_after_writing_is_rolled_back_in_its_row():
    inventory = make_inventory({"address": "192.0.2.10"})
    runs: list[Connected] = []

    class Remembered(Connected):
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            self.answer = lambda script: (
                f"::kolla-registry:: restored {CONFIG}\n" if "restore_pending" in script else ""
            )
            runs.append(self)

    def work(run):
        converge(run, wants_new, settle=False)
        raise ConnectionResetError("the link dropped")

    task = HostTask(make_ctx(), work, lambda ctx: (), RegistryAccess(inventory), step="work")
    task.run_class = Remembered

    [outcome] = fan_out([Host("node1", "192.0.2.1")], task, parallel=1)

    assert outcome.status == FAILED
    assert outcome.message == f"ConnectionResetError: the link dropped; rolled back {CONFIG}"
