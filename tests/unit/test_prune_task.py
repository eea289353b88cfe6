"""prune-registry on one host with no SSH: which scripts run in which mode, and the row it reports.

The action runs through the engine's Runner; the deployment host is a stand-in
that answers the scan (a facts query) and the one prune job as a host would.
"""

from __future__ import annotations

import pytest

from fabfile.actions.prune import PruneRegistry
from fabfile.images.model import Image
from fabfile.images.prune_run import NOT_DEPLOYED
from fabfile.model.context import Modes
from fabfile.model.errors import RemoteError
from fabfile.model.marks import MARK
from fabfile.model.outcome import CHANGED, FAILED, OK
from fabfile.registry.collect import GC_PENDING
from fabfile.registry.container import spec_of

from .factories import StandInRun, changed, container, docker_host, make_ctx, request_of, run_stand_ins

REPOSITORY = "openstack.kolla/keystone"
COLLECTED = "3 blobs marked, 2 blobs and 0 manifests"


def tag(name: str, day: int) -> dict:
    digest = "sha256:" + name.encode().hex().ljust(64, "0")
    created = f"2024-01-{day:02}T00:00:00Z"
    return {"tag": name, "digest": digest, "created": created, "blobs": [[digest[:-1] + "b", 1_000_000]]}


SCAN = {
    "repositories": [{"name": REPOSITORY, "tags": [tag("2023.1", 1), tag("2023.2", 2), tag("2024.1", 3)]}]
}


class Deploy1(StandInRun):
    """The deployment host: the scan answered from ``scan``; the prune job's parts (the volume's usage,
    the deletes, the collection) and a restore answered as a host would, each part noted in ``kinds``."""

    def __init__(self, host, ctx, scan: dict, deployed: bool, pending: bool) -> None:
        super().__init__(host, ctx, answers={"scan": scan})
        facts = docker_host(container=container())
        spec = spec_of(facts, ctx) if deployed else "0123456789abcdef"
        self.on_host = changed(facts, container=container(spec), files={GC_PENDING: ""} if pending else {})
        self.kinds: list[str] = []
        self.requests: list[dict] = []
        # How the collection ends: "" (well), a fail mark's text (it put the registry back itself), a
        # RemoteError (the whole script lost or killed), or "died" (its shell gone without a word).
        self.collect_ends: str | RemoteError = ""
        self.answer = self.host_answer

    def host_answer(self, script: str) -> str:
        if "garbage-collect" not in script:
            self.kinds.append("restore")
            return f"{MARK} restored\n"
        lines = []
        if "used-before" in script:
            self.kinds.append("usage")
            lines.append(f"{MARK} used-before 5000000")
        request = request_of(script)
        if request is not None:
            self.kinds.append("delete")
            self.requests.append(request)
            answers = [{"status": 202, "error": ""} for _ in request["delete"]]
            lines.append(f'{MARK} deletes {{"deleted": {answers}}}'.replace("'", '"'))
        self.kinds.append("collect")
        if isinstance(self.collect_ends, RemoteError):
            raise self.collect_ends
        if self.collect_ends == "died":
            lines.append(f"{MARK} read-only")
            lines.append(f"{MARK} collect-status 137")
            if "restored already" in script:
                # The job carries a restore of its own for this case: it puts the registry back.
                self.kinds.append("restore")
                lines.append(f"{MARK} restored")
        elif self.collect_ends:
            lines.append(f"{MARK} fail {self.collect_ends}")
            lines.append(f"{MARK} collect-status 1")
        else:
            lines += [f"{MARK} read-only", f"{MARK} collected {COLLECTED}", f"{MARK} used-after 3000000"]
            lines.append(f"{MARK} collect-status 0")
        return "\n".join(lines) + "\n"


def prune(
    modes: Modes | None = None,
    keep: int = 1,
    scan: dict = SCAN,
    deployed: bool = True,
    pending: bool = False,
    collect_ends: str | RemoteError = "",
):
    """prune-registry on the deployment host; its one row, and the stand-in host."""
    ctx = make_ctx(registry={"address": "192.0.2.10"})
    ctx = ctx.__class__(ctx.inventory, modes=modes or Modes())

    def make(host, host_ctx):
        run = Deploy1(host, host_ctx, scan, deployed, pending)
        run.collect_ends = collect_ends
        return run

    action = PruneRegistry([Image(REPOSITORY, "2024.1")], keep)
    result, runs = run_stand_ins(action, ctx, [ctx.inventory.deploy_host], make)
    [outcome] = result.outcomes
    return outcome, runs["deploy1"]


def test_check_mode_only_asks_and_says_what_would_go():
    outcome, run = prune(Modes(check=True))

    assert run.scripts == [] and run.asked["scan"] == {"scan": "http://192.0.2.10:4000"}
    assert outcome.status == CHANGED
    assert outcome.message == "1 repositories: 1 tags to delete (1 manifests), about 1.0 MB to free"


def test_a_prune_deletes_then_collects_and_reports_the_space_freed():
    outcome, run = prune()

    assert run.kinds == ["usage", "delete", "collect"]
    assert len(run.scripts) == 1  # one job: the usage, the deletes and the collection in one session
    assert run.requests[0]["delete"] == [["http://192.0.2.10:4000", REPOSITORY, tag("2023.1", 1)["digest"]]]
    assert outcome.status == CHANGED
    assert outcome.message == (
        f"1 repositories: 1 tags deleted (1 manifests); freed 2.0 MB (5.0 MB -> 3.0 MB); {COLLECTED}"
    )


@pytest.mark.parametrize("check", [True, False])
def test_a_registry_deploy_host_has_not_made_deletable_is_refused_before_any_change(check):
    outcome, run = prune(Modes(check=check), deployed=False)

    assert run.scripts == []
    assert outcome.status == FAILED and outcome.message == NOT_DEPLOYED


def test_nothing_to_delete_changes_nothing():
    outcome, run = prune(keep=5, deployed=False)

    assert run.scripts == []
    assert outcome.status == OK and outcome.message.startswith("nothing to delete: ")


def test_garbage_an_earlier_run_left_is_collected_even_with_nothing_to_delete():
    outcome, run = prune(keep=5, pending=True)

    assert run.kinds[0] == "usage" and run.kinds[-1] == "collect"
    assert all(request["delete"] == [] for request in run.requests)
    assert outcome.status == CHANGED and "freed 2.0 MB" in outcome.message


def test_a_collection_that_failed_without_a_word_on_the_registry_puts_it_back_from_here():
    timed_out = RemoteError("timed out: no answer within 1830 s (kolla_registry.command_timeout)", 124)

    outcome, run = prune(collect_ends=timed_out)

    assert run.kinds == ["usage", "delete", "collect", "restore"]
    assert run.siblings == 1  # on a new connection: the one that ran the job may be what failed
    assert outcome.status == FAILED
    assert outcome.message.startswith("1 repositories: 1 tags ")
    assert outcome.message.endswith(
        "timed out: no answer within 1830 s (kolla_registry.command_timeout); the registry is back to normal"
    )


def test_a_collection_whose_shell_died_without_a_word_fails_and_puts_the_registry_back():
    # The collection's own shell ended (killed: 137) before it said anything or put the registry back.
    outcome, run = prune(collect_ends="died")

    assert "restore" in run.kinds  # from here, or by the job itself
    assert outcome.status == FAILED
    assert "garbage collection" in outcome.message and "back to normal" in outcome.message


def test_a_collection_that_put_the_registry_back_itself_is_not_restored_again():
    outcome, run = prune(collect_ends="garbage-collect failed: boom; the registry is back to normal")

    assert run.kinds[-1] == "collect"
    assert outcome.status == FAILED
    assert outcome.message.endswith(
        "garbage collection: garbage-collect failed: boom; the registry is back to normal"
    )


def test_a_scan_the_registry_did_not_answer_fails_the_row():
    outcome, run = prune(scan={"error": "HTTP 0, not a registry", "repositories": []})

    assert run.scripts == []
    assert outcome.status == FAILED
    assert outcome.message == "the registry did not list its repositories: HTTP 0, not a registry"


def test_diff_mode_lists_each_tag_that_would_be_deleted(capsys):
    outcome, run = prune(Modes(check=True, diff=True))

    assert run.scripts == [] and outcome.status == CHANGED
    assert f"--- deploy1 ---\n- {REPOSITORY}:2023.1\n" in capsys.readouterr().out
