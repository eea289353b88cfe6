"""prune-registry on one host with no SSH: which scripts run in which mode, and the row it reports."""

from __future__ import annotations

import base64
import json
import re
from dataclasses import replace

import pytest

from fabfile.engine.hostrun import HostRun
from fabfile.images.model import Image
from fabfile.model.context import Modes
from fabfile.model.errors import RemoteError
from fabfile.model.inventory import Host
from fabfile.model.marks import MARK
from fabfile.model.outcome import CHANGED, FAILED, OK
from fabfile.registry.collect import GC_PENDING
from fabfile.registry.container import spec_of
from fabfile.tasks import prune

from .factories import changed, container, docker_host, make_ctx

REPOSITORY = "openstack.kolla/keystone"


def tag(name: str, day: int) -> dict:
    digest = "sha256:" + name.encode().hex().ljust(64, "0")
    created = f"2024-01-{day:02}T00:00:00Z"
    return {"tag": name, "digest": digest, "created": created, "blobs": [[digest[:-1] + "b", 1_000_000]]}


SCAN = {
    "repositories": [{"name": REPOSITORY, "tags": [tag("2023.1", 1), tag("2023.2", 2), tag("2024.1", 3)]}]
}


class Host1(HostRun):
    """The deployment host: scripts answered by kind (scan, delete, usage, collect, restore)."""

    def __init__(self, modes: Modes, scan: dict = SCAN, deployed: bool = True, pending: bool = False) -> None:
        ctx = replace(make_ctx(), modes=modes)
        super().__init__(Host("deploy1", "192.0.2.10"), ctx)
        facts = docker_host(container=container())
        spec = spec_of(facts, ctx) if deployed else "0123456789abcdef"
        self.facts = changed(facts, container=container(spec), files={GC_PENDING: ""} if pending else {})
        self.scan, self.kinds, self.requests = scan, [], []
        self.collect_fails = ""

    def run(self, script: str, on_line=None, timeout: int = 0) -> str:
        found = re.search(r"^REQUEST = '([^']*)'$", script, re.MULTILINE)
        if found:
            request = json.loads(base64.b64decode(found.group(1)))
            self.requests.append(request)
            self.kinds.append("delete" if "delete" in request else "scan")
            if "delete" in request:
                return json.dumps({"deleted": [{"status": 202, "error": ""} for _ in request["delete"]]})
            return json.dumps(self.scan)
        if "garbage-collect" in script:
            self.kinds.append("collect")
            if self.collect_fails:
                raise RemoteError(self.collect_fails, 1)
            summary = "3 blobs marked, 2 blobs and 0 manifests"
            return f"{MARK} read-only\n{MARK} collected {summary}\n{MARK} used-after 3000000\n"
        if "used-before" in script:
            self.kinds.append("usage")
            return f"{MARK} used-before 5000000\n"
        self.kinds.append("restore")
        return f"{MARK} restored\n"

    def sibling(self) -> HostRun:
        return self

    def close(self) -> None:
        pass


def pruned(run: Host1, keep: int = 1) -> str:
    prune.work([Image(REPOSITORY, "2024.1")], keep)(run)
    [outcome] = run.outcomes
    return outcome


def test_check_mode_only_asks_and_says_what_would_go():
    run = Host1(Modes(check=True))

    outcome = pruned(run)

    assert run.kinds == ["scan"]
    assert outcome.status == CHANGED
    assert outcome.message == "1 repositories: 1 tags to delete (1 manifests), about 1.0 MB to free"


def test_a_prune_deletes_then_collects_and_reports_the_space_freed():
    run = Host1(Modes())

    outcome = pruned(run)

    assert run.kinds == ["scan", "usage", "delete", "collect"]
    assert run.requests[1]["delete"] == [["http://192.0.2.10:4000", REPOSITORY, tag("2023.1", 1)["digest"]]]
    assert outcome.status == CHANGED
    assert outcome.message == (
        "1 repositories: 1 tags deleted (1 manifests); freed 2.0 MB (5.0 MB -> 3.0 MB); "
        "3 blobs marked, 2 blobs and 0 manifests"
    )


@pytest.mark.parametrize("check", [True, False])
def test_a_registry_deploy_host_has_not_made_deletable_is_refused_before_any_change(check):
    run = Host1(Modes(check=check), deployed=False)

    outcome = pruned(run)

    assert run.kinds == ["scan"]
    assert outcome.status == FAILED and outcome.message == prune.NOT_DEPLOYED


def test_nothing_to_delete_changes_nothing():
    run = Host1(Modes(), deployed=False)

    outcome = pruned(run, keep=5)

    assert run.kinds == ["scan"]
    assert outcome.status == OK and outcome.message.startswith("nothing to delete: ")


def test_garbage_an_earlier_run_left_is_collected_even_with_nothing_to_delete():
    run = Host1(Modes(), pending=True)

    outcome = pruned(run, keep=5)

    assert run.kinds == ["scan", "usage", "collect"]
    assert outcome.status == CHANGED and "freed 2.0 MB" in outcome.message


def test_a_collection_that_failed_without_a_word_on_the_registry_puts_it_back_from_here():
    run = Host1(Modes())
    run.collect_fails = "timed out: no answer within 1830 s (kolla_registry.command_timeout)"

    outcome = pruned(run)

    assert run.kinds == ["scan", "usage", "delete", "collect", "restore"]
    assert outcome.status == FAILED
    assert outcome.message == (
        "1 repositories: 1 tags deleted (1 manifests), about 1.0 MB to free; "
        "garbage collection: timed out: no answer within 1830 s "
        "(kolla_registry.command_timeout); the registry is back to normal"
    )


def test_a_collection_that_put_the_registry_back_itself_is_not_restored_again():
    run = Host1(Modes())
    run.collect_fails = "exit 1: garbage-collect failed: boom; the registry is back to normal"

    outcome = pruned(run)

    assert run.kinds[-1] == "collect"
    assert outcome.message.endswith(
        "garbage collection: exit 1: garbage-collect failed: boom; the registry is back to normal"
    )


def test_a_scan_the_registry_did_not_answer_fails_the_row():
    run = Host1(Modes(), scan={"error": "HTTP 0, not a registry", "repositories": []})

    with pytest.raises(
        RemoteError, match="the registry did not list its repositories: HTTP 0, not a registry"
    ):
        prune.work([], 1)(run)
