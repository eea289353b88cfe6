"""The engine with no SSH: converge, check and diff, jobs, handlers, checks, isolation, one result.

Hosts here are stand-ins that record the scripts they are given and answer
as a host would: these tests are about the engine's decisions, and about the
rule that check mode changes nothing whatever the task.
"""

from __future__ import annotations

import json
import socket

import pytest
from invoke.exceptions import Exit

from fabfile.actions.deploy import DEPLOY_STEPS, DeploySteps
from fabfile.actions.kolla import KollaGlobals
from fabfile.actions.prune import PruneRegistry
from fabfile.actions.pull import PullImages
from fabfile.actions.sync import SyncImages
from fabfile.actions.targets import ConfigureTargets
from fabfile.engine.access import RegistryAccess
from fabfile.engine.action import Action, Check, Step
from fabfile.engine.converge import MAX_ROUNDS, converge, run_steps
from fabfile.engine.report import Result, as_json, finish
from fabfile.engine.runner import Runner
from fabfile.engines.docker.config import ConfigError
from fabfile.facts.base import PREAMBLE
from fabfile.images.model import Image, image_list
from fabfile.images.pull_plan import PullOrder
from fabfile.images.sync_plan import SyncSource
from fabfile.images.wanted import every_host_wants
from fabfile.model.context import Modes
from fabfile.model.errors import RemoteError
from fabfile.model.inventory import Host, ImageSettings
from fabfile.model.marks import CONFLICT_EXIT, MARK
from fabfile.model.outcome import CHANGED, FAILED, OK, SKIPPED, UNREACHABLE, Outcome
from fabfile.model.plan import RELOAD, RESTART, Done, FileChange, Handler, Job, StepPlan, merged_handler
from fabfile.registry.container import spec_of

from .factories import (
    StandInRun,
    changed,
    container,
    docker_host,
    host_facts,
    make_ctx,
    make_inventory,
    run_stand_ins,
)

CONFIG = "/etc/x.conf"
NODE = Host("node1", "192.0.2.11")


class Scripted(StandInRun):
    """A stand-in whose CONFIG file holds ``on_disk``; applying a plan writes "new" unless told otherwise."""

    def __init__(self, host=NODE, ctx=None, config=None) -> None:
        super().__init__(host, ctx or make_ctx(), config)
        self.on_disk = "old"
        self.answer = self.applies

    def applies(self, script: str) -> str:
        self.on_disk = "new"
        return ""

    def gather(self, sections=None):
        self.on_host = host_facts(files={CONFIG: self.on_disk})
        return super().gather(sections)


def scripted(modes: Modes | None = None) -> Scripted:
    run = Scripted(ctx=make_ctx())
    run.ctx = make_ctx() if modes is None else _with_modes(modes)
    run.gather()
    return run


def _with_modes(modes: Modes):
    ctx = make_ctx()
    return ctx.__class__(ctx.inventory, ctx.registry_address, modes)


def wants_new(facts, ctx) -> StepPlan:
    """Write "new" to CONFIG unless it has it; reload Docker when it does."""
    plan = StepPlan("write-config")
    if facts.files.get(CONFIG) != "new":
        plan.files.append(FileChange(CONFIG, facts.files.get(CONFIG), "new"))
        plan.handler = RELOAD
    else:
        plan.notes.append("has new")
    return plan


def job(done: Done | None = None, **fields) -> Job:
    return Job("do the job", "run-the-job", lambda output: done or Done(f"job said {output.strip()}"), **fields)


def with_job(*jobs: Job):
    def planner(facts, ctx) -> StepPlan:
        return StepPlan("work", jobs=list(jobs))

    return planner


# --- converge: plan, apply only what differs, gather again -------------------------------------


def test_a_change_is_applied_once_then_the_host_is_gathered_and_planned_again():
    run = scripted()

    outcome, plan = converge(run, Step(wants_new))

    assert (outcome.status, outcome.message) == (CHANGED, f"write {CONFIG}")
    assert len(run.scripts) == 1 and run.gatherings == 2
    assert plan.handler == RELOAD


def test_nothing_to_do_is_ok_and_runs_nothing():
    run = scripted()
    run.on_disk = "new"
    run.gather()

    outcome, _ = converge(run, Step(wants_new))

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

    outcome, _ = converge(run, Step(planner))

    assert outcome.status == CHANGED
    assert seen[:2] == ["old", "theirs"]
    assert len(run.scripts) == 2


def test_files_that_keep_changing_fail_after_a_bounded_number_of_rounds():
    run = scripted()

    def always_conflicts(script: str) -> str:
        raise RemoteError("exit 75: conflict", CONFLICT_EXIT)

    run.answer = always_conflicts

    outcome, _ = converge(run, Step(wants_new))

    assert outcome.status == FAILED and "kept changing" in outcome.message
    assert len(run.scripts) == MAX_ROUNDS


def test_a_failed_apply_fails_the_step_with_the_hosts_reason():
    run = scripted()

    def fails(script: str) -> str:
        raise RemoteError("exit 1: disk full", 1)

    run.answer = fails

    outcome, _ = converge(run, Step(wants_new))

    assert (outcome.status, outcome.message) == (FAILED, f"write {CONFIG}: exit 1: disk full")


def test_a_file_that_cannot_be_read_safely_is_never_edited():
    run = scripted()
    run.facts.unreadable[CONFIG] = "not UTF-8 text"

    outcome, _ = converge(run, Step(wants_new))

    assert outcome.status == FAILED
    assert outcome.message == f"{CONFIG}: not UTF-8 text: cannot be edited safely; left as it is"
    assert run.scripts == []


def test_a_planner_that_cannot_read_a_file_fails_its_step_with_the_reason():
    def unreadable(facts, ctx):
        raise ConfigError("/etc/default/docker: DOCKER_OPTS cannot be read (No closing quotation)")

    outcome, _ = converge(scripted(), Step(unreadable))

    assert (outcome.status, outcome.message) == (
        FAILED,
        "/etc/default/docker: DOCKER_OPTS cannot be read (No closing quotation)",
    )


# --- check and diff: decided here alone --------------------------------------------------------


def test_check_mode_reports_the_change_and_runs_nothing():
    run = scripted(Modes(check=True))

    outcome, _ = converge(run, Step(wants_new))

    assert (outcome.status, outcome.message) == (CHANGED, f"write {CONFIG}")
    assert run.scripts == []


def test_check_mode_reports_a_job_and_never_runs_it(capsys):
    run = scripted(Modes(check=True))

    outcome, _ = converge(run, Step(with_job(job(diff="+ an image\n"))))

    assert (outcome.status, outcome.message) == (CHANGED, "do the job")
    assert run.scripts == [] and "+ an image" not in capsys.readouterr().out


def test_diff_mode_shows_each_file_and_what_each_job_would_change(capsys):
    run = scripted(Modes(check=True, diff=True))

    def both(facts, ctx):
        plan = wants_new(facts, ctx)
        plan.jobs.append(job(diff="+ quay.io/kolla/keystone:1\n"))
        return plan

    converge(run, Step(both))

    shown = capsys.readouterr().out
    assert f"--- node1 ---\n--- before: {CONFIG}" in shown and "+new" in shown
    assert "--- node1 ---\n+ quay.io/kolla/keystone:1" in shown
    assert run.scripts == []


def test_in_check_mode_a_step_that_fails_after_a_change_is_skipped_and_ends_the_run():
    run = scripted(Modes(check=True))
    later: list[str] = []

    def needs_the_change(facts, ctx):
        return StepPlan("needs-it", error="Docker is not running here")

    def never(facts, ctx):
        later.append("ran")
        return StepPlan("never")

    assert run_steps(run, tuple(Step(p) for p in (wants_new, needs_the_change, never))) is False
    assert [(o.step, o.status) for o in run.outcomes] == [("write-config", CHANGED), ("needs-it", SKIPPED)]
    assert run.outcomes[1].message == "depends on the changes above: Docker is not running here"
    assert later == []


def test_a_steps_own_check_is_not_run_in_check_mode():
    run = scripted(Modes(check=True))
    run.on_disk = "new"
    run.gather()

    run_steps(run, (Step(wants_new, check=lambda facts, ctx, changed: Check("write-config", script="prove"),),))

    assert run.outcomes[0].status == OK and run.scripts == []


# --- jobs, handlers, a step's own check ---------------------------------------------------------


def test_a_job_runs_after_the_files_with_uploads_and_its_output_read(capsys):
    run = scripted()
    run.answer = lambda script: f"{MARK} progress 5\nok\n" if "run-the-job" in script else ""
    seen: list[str] = []

    def on_line(line: str) -> str | None:
        seen.append(line)
        return "progress shown" if "progress" in line else None

    plan_job = job(uploads=[("/srv/images.tar", "images.tar")], on_line=on_line)
    outcome, _ = converge(run, Step(with_job(plan_job), settle=False))

    assert (outcome.status, outcome.message) == (CHANGED, f"job said {MARK} progress 5\nok")
    assert run.uploaded == [("/srv/images.tar", "images.tar")]
    assert run.scripts[0].startswith("UPLOADS=/tmp/kolla-registry.standin; export UPLOADS\n")
    assert seen == [f"{MARK} progress 5", "ok"]
    assert capsys.readouterr().out == "node1 | work | do the job\nprogress shown\n"


def test_a_job_that_fails_fails_the_row_and_its_table_is_shown(capsys):
    run = scripted()
    outcome, _ = converge(run, Step(with_job(job(Done("2 failed", failed=True, detail="THE TABLE"))), settle=False))

    assert (outcome.status, outcome.message) == (FAILED, "2 failed")
    assert "THE TABLE" in capsys.readouterr().out


def test_a_job_that_changed_nothing_is_ok():
    outcome, _ = converge(scripted(), Step(with_job(job(Done("holds 3/3", changed=False))), settle=False))
    assert (outcome.status, outcome.message) == (OK, "holds 3/3")


def test_a_job_lost_midway_gets_its_recovery_on_a_new_connection():
    run = scripted()
    recovered: list[str] = []

    def answer(script: str) -> str:
        if "run-the-job" in script:
            raise RemoteError("SSH to node1 failed: EOF")
        recovered.append(script)
        return "put back\n"

    run.answer = answer
    lost = job(recover=lambda message: "put-it-back" if "EOF" in message else "", recover_done=str.strip)

    outcome, _ = converge(run, Step(with_job(lost), settle=False))

    assert outcome.status == FAILED and outcome.message == "do the job: SSH to node1 failed: EOF; put back"
    assert recovered == ["put-it-back"] and run.siblings == 1


def test_a_plan_that_fires_the_handler_applies_it_with_the_files_in_one_session():
    run = scripted()

    def fires(facts, ctx):
        plan = wants_new(facts, ctx)
        plan.fire = Handler("192.0.2.10:4000", insecure=True)
        return plan

    converge(run, Step(fires, settle=False))

    [script] = run.scripts
    assert "apply pending Docker changes" in script and script.index("put ") < script.index("apply pending")


def test_later_steps_hear_which_handler_earlier_changes_notified():
    run = scripted()
    heard: list[str | None] = []

    def listens(facts, ctx):
        heard.append(ctx.notified)
        return StepPlan("restart-docker")

    run_steps(run, (Step(wants_new), Step(listens)))
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
    plan.merge(StepPlan("unit", files=[FileChange("/b", None, "b")], handler=RESTART, notes=["why"], jobs=[job()]))
    assert [f.path for f in plan.files] == ["/a", "/b"] and plan.handler == RESTART and plan.notes == ["why"]
    assert [j.summary for j in plan.jobs] == ["do the job"]


@pytest.mark.parametrize(
    ("changed", "check", "status", "message"),
    [
        pytest.param(False, Check("s", script="prove", passed="trusted; pulled probe"), OK, "trusted; pulled probe", id="ok-proved"),
        pytest.param(True, Check("s", passed="pulled probe"), CHANGED, f"write {CONFIG}; pulled probe", id="changed-added"),
        pytest.param(False, Check("s", failed="exit 1: no such image"), FAILED, "exit 1: no such image", id="known-failure"),
    ],
)
def test_a_steps_own_check_amends_its_one_row(changed, check, status, message):
    run = scripted()
    if not changed:
        run.on_disk = "new"
        run.gather()
    asked: list[bool] = []

    def proof(facts, ctx, was_changed):
        asked.append(was_changed)
        return check

    run_steps(run, (Step(wants_new, settle=False, check=proof),))

    assert asked == [changed]
    assert [(o.status, o.message) for o in run.outcomes] == [(status, message)]


def test_a_step_that_fails_after_an_earlier_one_wrote_rolls_the_unapplied_change_back():
    run = scripted()

    def answer(script: str) -> str:
        if "restore_pending" in script:
            return f"{MARK} restored {CONFIG}\n"
        run.on_disk = "new"
        return ""

    run.answer = answer

    def breaks(facts, ctx):
        return StepPlan("unit", error="the unit cannot be read")

    assert run_steps(run, (Step(wants_new), Step(breaks))) is False
    assert run.outcomes[-1].message == f"the unit cannot be read; rolled back {CONFIG}"
    assert "restore_pending" in run.scripts[-1]


def test_nothing_is_rolled_back_when_nothing_was_written_for_a_handler():
    run = scripted()
    assert run_steps(run, (Step(lambda facts, ctx: StepPlan("broken", error="no")),)) is False
    assert run.outcomes[0].message == "no" and run.scripts == []


# --- the runner: every host isolated, every failure a row --------------------------------------


class Probe(Action):
    """An action whose one step writes CONFIG; where it fails is chosen per test."""

    name = step = "probe"

    def __init__(self, fails_in: str = "") -> None:
        self.fails_in = fails_in

    def steps(self, ctx):
        if self.fails_in == "plan" and ctx.host_name == "node2":
            return (Step(self.broken),)
        return (Step(wants_new, settle=False),)

    @staticmethod
    def broken(facts, ctx):
        raise RuntimeError("a bug in a planner")


class Breaking(Scripted):
    """A stand-in that raises in the phase named by ``where`` (on node2 only)."""

    where = ""

    def gather(self, sections=None):
        if self.where == "gather" and self.host.name == "node2":
            raise RemoteError("gathering facts: exit 1: sh: not found")
        return super().gather(sections)

    def run(self, script: str, on_line=None, timeout: int = 0) -> str:
        if self.where == "apply" and self.host.name == "node2":
            raise ConnectionResetError("the link dropped")
        return super().run(script, on_line, timeout)

    def close(self) -> None:
        if self.where == "close" and self.host.name == "node2":
            raise OSError("socket already closed")


HOSTS = [Host(f"node{i}", f"192.0.2.{i}") for i in (1, 2, 3)]


@pytest.mark.parametrize(
    ("where", "fails_in", "status", "message"),
    [
        ("gather", "", FAILED, "gathering facts: exit 1: sh: not found"),
        ("", "plan", FAILED, "RuntimeError: a bug in a planner"),
        ("apply", "", FAILED, "ConnectionResetError: the link dropped"),
        ("close", "", FAILED, "OSError: socket already closed"),
    ],
)
def test_an_exception_in_any_phase_is_that_hosts_row_and_the_others_finish(where, fails_in, status, message):
    ctx = make_ctx({"address": "192.0.2.10"})

    def make(host, host_ctx):
        run = Breaking(host, host_ctx)
        run.where = where
        return run

    result, _ = run_stand_ins(Probe(fails_in), ctx, HOSTS, make, parallel=3)

    rows = [(o.host, o.status, o.message) for o in result.outcomes]
    assert rows[0] == ("node1", CHANGED, f"write {CONFIG}") and rows[-1] == ("node3", CHANGED, f"write {CONFIG}")
    # A host lost after it wrote says the rollback could not reach it either; a failed close is a
    # row after the host's others.
    failed = [row for row in rows if row[0] == "node2"][-1]
    assert failed[1] == status and failed[2].startswith(message), rows
    assert result.failed


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_an_unreachable_host_is_its_own_row():
    inventory = make_inventory({"address": "192.0.2.10"})
    host = Host("down", "127.0.0.1", port=closed_port())
    runner = Runner(Probe(), make_ctx({"address": "192.0.2.10"}), RegistryAccess(inventory))

    [outcome] = runner.run([host], 1).outcomes

    assert outcome.status == UNREACHABLE
    assert outcome.message == f"SSH connection to root@127.0.0.1:{host.port} refused"


def test_a_registry_address_that_cannot_be_learnt_fails_each_host_before_it_is_touched():
    deploy = Host("deploy1", "127.0.0.1", port=closed_port())
    inventory = make_inventory()
    inventory = inventory.__class__(inventory.path, deploy, (NODE,))
    runner = Runner(Probe(), make_ctx(), RegistryAccess(inventory))
    touched: list[str] = []

    def make(host, ctx, config=None):
        run = Scripted(host, ctx)
        run.answer = lambda script: touched.append(script) or ""
        return run

    runner.run_class = make
    [outcome] = runner.run(inventory.targets, 1).outcomes

    assert outcome.status == FAILED
    assert outcome.message.startswith("cannot learn the registry from deploy1: SSH connection")
    assert outcome.message.endswith(f"set registry.address in {inventory.path}")
    assert touched == []


# --- check mode changes nothing, whatever the task ---------------------------------------------

IMAGES = [Image("openstack.kolla/keystone", "zed"), Image("openstack.kolla/nova-api", "zed")]
MANIFESTS = {"manifests": [{"status": 404}, {"status": 404}, {"status": 200, "digest": "sha256:" + "a" * 64, "size": 10}] * 1
             + [{"status": 200, "digest": "sha256:" + "b" * 64, "size": 10}]}
SCAN = {"repositories": [{"name": "openstack.kolla/keystone", "tags": [
    {"tag": t, "digest": "sha256:" + c * 64, "created": f"2024-01-0{d}T00:00:00Z", "blobs": [["sha256:" + c * 63 + "f", 5]]}
    for t, c, d in (("wallaby", "1", 1), ("xena", "2", 2), ("yoga", "3", 3))
]}]}


def _sync() -> Action:
    settings = ImageSettings(names=tuple(image.name for image in IMAGES))
    return SyncImages(image_list(settings), SyncSource(settings))


def _prune(ctx) -> Action:
    return PruneRegistry([Image("openstack.kolla/keystone", "yoga")], keep=0)


EVERY_TASK = [
    pytest.param(lambda ctx: DeploySteps("deploy-host", DEPLOY_STEPS, verify=True), id="deploy-host"),
    pytest.param(lambda ctx: ConfigureTargets(), id="configure-targets"),
    pytest.param(lambda ctx: KollaGlobals("/etc/kolla/globals.yml", "openstack.kolla"), id="kolla-globals"),
    pytest.param(lambda ctx: _sync(), id="sync-images"),
    pytest.param(_prune, id="prune-registry"),
    pytest.param(lambda ctx: PullImages(PullOrder(every_host_wants(IMAGES), {}, 3, 0)), id="pull-images"),
]


@pytest.mark.parametrize("make_action", EVERY_TASK)
def test_check_mode_changes_nothing_for_every_task(make_action):
    ctx = make_ctx({"address": "192.0.2.10"})
    ctx = ctx.__class__(ctx.inventory, ctx.registry_address, Modes(check=True, diff=True))
    host = Host("deploy1", "192.0.2.10")
    # A host where every task has something to do: no daemon.json entry, an old package index,
    # no registry container, nothing pulled, images to copy, old tags to delete.
    facts = docker_host(apt_lists_age=10**6)
    # Every instance refuses pushes (read-only), as prune-registry checks before it plans a collection.
    facts = changed(facts, container=container(spec_of(facts, ctx)), answers={"readers": {"deploy1": "405"}})

    def make(host, host_ctx):
        return StandInRun(host, host_ctx, on_host=facts, answers={"manifests": MANIFESTS, "scan": SCAN})

    result, runs = run_stand_ins(make_action(ctx), ctx, [host], make)

    ran = [script for script in runs["deploy1"].scripts if not script.startswith(PREAMBLE)]
    assert ran == []
    assert any(o.status == CHANGED for o in result.outcomes), result.outcomes
    assert not any(o.status == FAILED for o in result.outcomes), result.outcomes


# --- one result: the recap, JSON and the exit status --------------------------------------------


def rows() -> list[Outcome]:
    return [Outcome(name, "work", status, "", 0.0) for name, status in (("node1", OK), ("node2", UNREACHABLE), ("node3", CHANGED))]


def test_one_recap_for_every_host_and_exit_1_when_any_failed(capsys):
    with pytest.raises(Exit) as caught:
        finish(Result("work", rows()))

    shown = capsys.readouterr().out
    assert caught.value.code == 1
    assert shown.count("RECAP") == 1
    assert all(f"{name} " in shown for name in ("node1", "node2", "node3"))
    finish(Result("work", [rows()[0], rows()[2]]))  # nobody failed: no exit


def test_json_holds_every_row_with_its_data_and_the_totals():
    outcomes = rows()
    outcomes[0].data = {"held": 3}
    document = json.loads(as_json(Result("pull-images", outcomes, check=True, extra={"registry": "r:4000"})))

    assert document["task"] == "pull-images" and document["check"] is True and document["registry"] == "r:4000"
    assert [(row["host"], row["status"]) for row in document["hosts"]] == [
        ("node1", OK), ("node2", UNREACHABLE), ("node3", CHANGED)
    ]
    assert document["hosts"][0]["held"] == 3 and "data" not in document["hosts"][0]
    assert document["totals"]["node2"]["unreachable"] == 1 and document["failed"] is True


def test_json_output_still_exits_1_when_a_host_failed(capsys):
    with pytest.raises(Exit):
        finish(Result("status", rows()), json_output=True)
    assert json.loads(capsys.readouterr().out)["failed"] is True


def test_an_action_of_no_steps_with_a_check_runs_the_check_as_its_row():
    class Verify(Action):
        name = "verify-registry"

        def check(self, facts, ctx):
            return Check("verify-registry", script="verify")

    ctx = make_ctx({"address": "192.0.2.10"})

    def make(host, host_ctx):
        return StandInRun(host, host_ctx, answer=lambda script: f"{MARK} pulled probe\n" if script == "verify" else "")

    result, runs = run_stand_ins(Verify(), ctx, [NODE], make)

    assert [(o.step, o.status, o.message) for o in result.outcomes] == [("verify-registry", OK, "pulled probe")]
    assert runs["node1"].scripts[-1] == "verify"
