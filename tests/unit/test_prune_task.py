"""prune-registry on one host with no SSH: which scripts run in which mode, and the row it reports.

The action runs through the engine's Runner; the deployment host is a stand-in
that answers the scan (a facts query) and the one prune job as a host would.
"""

from __future__ import annotations

import json

import pytest

from fabfile.actions.prune import PruneRegistry
from fabfile.images.host_lock import HELD, LOCK_WAIT
from fabfile.images.model import Image
from fabfile.images.prune_run import NOT_DEPLOYED
from fabfile.model.context import Modes
from fabfile.model.errors import RemoteError
from fabfile.model.marks import MARK
from fabfile.model.outcome import CHANGED, FAILED, OK
from fabfile.registry.collect import GC_PENDING
from fabfile.registry.container import spec_of
from fabfile.registry.writer import WRITER_SOCKET

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
    """The deployment host: the scan answered from ``scan``, every instance's answer to a push from
    ``readers``; the prune job's parts (the volume's usage, the deletes, the collection) and a cleanup
    answered as a host would, each part noted in ``kinds``."""

    def __init__(self, host, ctx, scan: dict, deployed: bool, pending: bool, readers: dict | None = None) -> None:
        super().__init__(host, ctx, answers={"scan": scan})
        facts = docker_host(container=container())
        spec = spec_of(facts, ctx) if deployed else "0123456789abcdef"
        refused = {"readers": readers if readers is not None else {"deploy1": "405"}}
        files = {GC_PENDING: ""} if pending else {}
        self.on_host = changed(facts, container=container(spec), files=files, answers=refused)
        self.kinds: list[str] = []
        self.requests: list[dict] = []
        # How the collection ends: "" (well), a fail mark's text (it said why itself), a RemoteError
        # (the whole script lost or killed), or "died" (its shell gone without a word).
        self.collect_ends: str | RemoteError = ""
        # What the program sees when it looks again just before deleting: each repository's tags, and
        # the tag that now keeps a manifest ((repository, digest) -> tag).
        self.current: dict[str, dict[str, str]] = {}
        self.kept: dict[tuple[str, str], str] = {}
        # Another run holds the host's lock for longer than the job waits.
        self.locked_out = False
        self.answer = self.host_answer

    def deleted(self, repository: str, digest: str) -> dict:
        if (repository, digest) in self.kept:
            return {"status": 0, "error": "", "kept": self.kept[(repository, digest)]}
        return {"status": 202, "error": "", "kept": ""}

    def host_answer(self, script: str) -> str:
        if "garbage-collect" in script and f"flock -w {LOCK_WAIT} 9" in script:
            self.kinds.append("lock")
            if self.locked_out:
                raise RemoteError(f"exit 1: {HELD} (waited {LOCK_WAIT} s): nothing was changed; try again once it ends", 1)
        if "garbage-collect" not in script:
            self.kinds.append("cleanup")
            return f"{MARK} cleaned\n"
        lines = []
        if "used-before" in script:
            self.kinds.append("usage")
            lines.append(f"{MARK} used-before 5000000")
        request = request_of(script)
        if request is not None:
            self.kinds.append("delete")
            self.requests.append(request)
            answers = [self.deleted(repo["name"], d) for repo in request["prune"]["repositories"] for d in repo["manifests"]]
            found = {"deleted": answers, "current": self.current}
            lines.append(f"{MARK} deletes {json.dumps(found)}")
        self.kinds.append("collect")
        if isinstance(self.collect_ends, RemoteError):
            raise self.collect_ends
        if self.collect_ends == "died":
            lines.append(f"{MARK} collect-status 137")
            if 'echo "::kolla-registry:: cleaned"' in script:
                # The job carries a cleanup of its own for this case.
                self.kinds.append("cleanup")
                lines.append(f"{MARK} cleaned")
        elif self.collect_ends:
            lines.append(f"{MARK} fail {self.collect_ends}")
            lines.append(f"{MARK} collect-status 1")
        else:
            lines += [f"{MARK} collected {COLLECTED}", f"{MARK} used-after 3000000"]
            lines.append(f"{MARK} collect-status 0")
        return "\n".join(lines) + "\n"


def prune(
    modes: Modes | None = None,
    keep: int = 1,
    scan: dict = SCAN,
    deployed: bool = True,
    pending: bool = False,
    collect_ends: str | RemoteError = "",
    every: bool = False,
    readers: dict | None = None,
    **host,
):
    """prune-registry on the deployment host; its one row, and the stand-in host (``host``: its attributes)."""
    ctx = make_ctx(registry={"address": "192.0.2.10"})
    ctx = ctx.__class__(ctx.inventory, modes=modes or Modes())

    def make(host_, host_ctx):
        run = Deploy1(host_, host_ctx, scan, deployed, pending, readers)
        run.collect_ends = collect_ends
        for name, value in host.items():
            setattr(run, name, value)
        return run

    action = PruneRegistry([Image(REPOSITORY, "2024.1")], keep, every)
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

    assert run.kinds == ["lock", "usage", "delete", "collect"]
    assert len(run.scripts) == 1  # one job: the usage, the deletes and the collection in one session
    old = tag("2023.1", 1)["digest"]
    assert run.requests[0] == {
        "prune": {
            "socket": WRITER_SOCKET,
            "repositories": [{"name": REPOSITORY, "manifests": [old], "going": [["2023.1", old]]}],
        }
    }
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

    assert run.kinds == ["lock", "usage", "collect"]
    assert run.requests == []  # no writer, no program: nothing to delete
    assert outcome.status == CHANGED and "freed 2.0 MB" in outcome.message


def test_a_job_lost_without_a_word_leaves_no_writer_nor_collector_running():
    timed_out = RemoteError("timed out: no answer within 1830 s (kolla_registry.command_timeout)", 124)

    outcome, run = prune(collect_ends=timed_out)

    assert run.kinds == ["lock", "usage", "delete", "collect", "cleanup"]
    assert run.siblings == 1  # on a new connection: the one that ran the job may be what failed
    assert "flock -w" in run.scripts[-1]  # once the lost job's lock is free
    assert outcome.status == FAILED
    assert outcome.message.startswith("1 repositories: 1 tags ")
    assert outcome.message.endswith(
        "timed out: no answer within 1830 s (kolla_registry.command_timeout); no writer nor collector left running"
    )


def test_a_collection_whose_shell_died_without_a_word_fails_and_cleans_up_after_itself():
    # The collection's own shell ended (killed: 137) before it said anything.
    outcome, run = prune(collect_ends="died")

    assert run.kinds[-1] == "cleanup" and run.siblings == 0
    assert outcome.status == FAILED and outcome.message.endswith("garbage collection: exit 137")


def test_a_collection_that_failed_and_said_why_fails_its_row_with_that_line():
    outcome, run = prune(collect_ends="garbage-collect failed: boom; the registry kept serving")

    assert run.kinds[-1] == "collect" and run.siblings == 0
    assert outcome.status == FAILED
    assert outcome.message.endswith("garbage collection: garbage-collect failed: boom; the registry kept serving")


NEEDS = "garbage collection needs every instance read-only;"
BRING_BACK = "bring it back, or take it out of registry.replicas"


@pytest.mark.parametrize(
    ("readers", "why"),
    [
        ({"deploy1": "202"}, f"deploy1 (192.0.2.10) accepts pushes (HTTP 202): {NEEDS} run fab deploy-host first"),
        ({"deploy1": "000"}, f"deploy1 (192.0.2.10) did not answer: {NEEDS} {BRING_BACK}"),
        ({}, f"deploy1 (192.0.2.10) did not answer: {NEEDS} {BRING_BACK}"),
    ],
)
def test_a_registry_that_takes_pushes_or_does_not_answer_stops_the_prune_before_any_change(readers, why):
    outcome, run = prune(readers=readers)

    assert run.scripts == []
    assert outcome.status == FAILED and outcome.message == why


def test_a_scan_the_registry_did_not_answer_fails_the_row():
    outcome, run = prune(scan={"error": "HTTP 0, not a registry", "repositories": []})

    assert run.scripts == []
    assert outcome.status == FAILED
    assert outcome.message == "the registry did not list its repositories: HTTP 0, not a registry"


def test_diff_mode_lists_each_tag_that_would_be_deleted(capsys):
    outcome, run = prune(Modes(check=True, diff=True))

    assert run.scripts == [] and outcome.status == CHANGED
    assert f"--- deploy1 ---\n- {REPOSITORY}:2023.1\n" in capsys.readouterr().out


# --- the host's lock, the image list's repositories, what changed since the scan --------------------------


def test_a_prune_waits_for_the_host_s_lock_and_fails_its_row_changing_nothing_when_another_run_holds_it():
    outcome, run = prune(locked_out=True)

    assert run.kinds == ["lock"] and run.siblings == 0  # nothing deleted, nothing to put back
    assert outcome.status == FAILED
    assert outcome.message.endswith(
        f"exit 1: another run holds /var/lib/kolla-registry/lock (waited {LOCK_WAIT} s): "
        "nothing was changed; try again once it ends"
    )


def test_the_job_takes_the_apply_script_s_lock_before_anything_else():
    _, run = prune()

    [script] = run.scripts
    body = script.split("\n", 2)[2]
    assert script.splitlines()[1].startswith("mkdir -p /var/lib/kolla-registry && exec 9>/var/lib/kolla-registry/lock")
    assert f"flock -w {LOCK_WAIT} 9 ||" in script.splitlines()[2]
    assert body.index("flock") < body.index("used-before") < body.index("registry-writer") < body.index("garbage-collect")


SCAN_OF_THREE = {
    "repositories": [
        {"name": REPOSITORY, "tags": [tag("2023.1", 1), tag("2023.2", 2), tag("2024.1", 3)]},
        {"name": "othercloud/keystone", "tags": [tag("2023.1", 1), tag("2023.2", 2)]},
        {"name": "ops/backup-agent", "tags": [tag("v1", 1), tag("v2", 2)]},
    ]
}


def test_only_the_image_list_s_repositories_are_pruned_by_default(capsys):
    outcome, run = prune(keep=1, scan=SCAN_OF_THREE)

    [request] = run.requests
    assert [repo["name"] for repo in request["prune"]["repositories"]] == [REPOSITORY]
    assert outcome.status == CHANGED and outcome.message.startswith("1 repositories: 1 tags deleted (1 manifests)")
    shown = capsys.readouterr().out
    assert "othercloud/keystone" in shown and "left alone" in shown


def test_check_says_what_all_repositories_would_delete_besides():
    outcome, _ = prune(Modes(check=True), keep=1, scan=SCAN_OF_THREE)

    # keystone 2023.1's layer is othercloud's 2023.1's too (the stand-in's blobs go by tag): it stays in use.
    assert outcome.message == (
        "1 repositories: 1 tags to delete (1 manifests), about 0 B to free; "
        "2 repositories not in the image list left alone (--all-repositories would delete 2 tags there)"
    )
    wide, _ = prune(Modes(check=True), keep=1, scan=SCAN_OF_THREE, every=True)
    assert wide.message == "3 repositories: 3 tags to delete (3 manifests), about 2.0 MB to free"  # one layer twice


def test_a_manifest_tagged_since_the_scan_is_kept_and_the_row_says_so():
    old = tag("2023.1", 1)["digest"]
    current = {REPOSITORY: {"2023.1": old, "2024.1": tag("2024.1", 3)["digest"], "rollback": old}}

    outcome, _ = prune(keep=0, current=current, kept={(REPOSITORY, old): "rollback"})

    assert outcome.status == CHANGED
    assert outcome.message.startswith("1 repositories: 1 tags deleted (1 manifests)")
    # 2023.2 went; 2023.1 stayed with the tag pushed since the scan.
    assert "openstack.kolla/keystone: kept, changed since the scan: 2023.1 (rollback uses it)" in outcome.message
