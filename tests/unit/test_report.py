"""report: outcomes in, progress lines, the recap table, Ansible-style totals, JSON and the exit status out."""

from __future__ import annotations

import json

import pytest
from invoke.exceptions import Exit

from fabfile.engine import report
from fabfile.engine.report import Result
from fabfile.model.outcome import CHANGED, FAILED, OK, SKIPPED, UNREACHABLE, Outcome

OUTCOMES = [
    Outcome("deploy1", "update-packages", OK, "package index is 120s old", 0.42),
    Outcome("deploy1", "install-docker", CHANGED, "write /etc/docker/daemon.json", 12.3, "20.10.24+dfsg1"),
    Outcome("node1", "configure-targets", FAILED, "exit 3: Docker did not come back", 61.0, "24.0.7"),
    Outcome(
        "node-with-a-long-name", "configure-targets", UNREACHABLE, "SSH to root@192.0.2.13:22 timed out", 10.0
    ),
    Outcome("deploy1", "restart-docker", SKIPPED, "depends on the changes above", 0.0),
]


@pytest.mark.parametrize(
    "status, failed", [(OK, False), (CHANGED, False), (SKIPPED, False), (FAILED, True), (UNREACHABLE, True)]
)
def test_failed(status, failed):
    assert Outcome("h", "s", status).failed is failed


def test_line():
    outcome = Outcome("node1", "configure-targets", CHANGED, "192.0.2.10:4000 trusted; pulled probe", 3.2)

    assert (
        report.progress_line(outcome) == "node1 | configure-targets | CHANGED | 192.0.2.10:4000 trusted; pulled probe"
    )


def test_recap_has_every_host_step_and_status():
    text = report.recap(Result("deploy-host", OUTCOMES))

    assert text.splitlines()[0] == "RECAP"
    rows = text.splitlines()[3:8]
    for outcome, row in zip(OUTCOMES, rows, strict=True):
        assert row.split()[:3] == [outcome.host, outcome.step, outcome.status]
        assert outcome.message in row


def test_recap_in_check_mode_says_nothing_changed():
    assert report.recap(Result("deploy-host", OUTCOMES, check=True)).splitlines()[0] == "RECAP (check mode: nothing was changed)"


def test_recap_with_engine_adds_the_version_column():
    with_docker = report.recap(Result("deploy-host", OUTCOMES, with_engine=True))
    without = report.recap(Result("deploy-host", OUTCOMES))

    assert with_docker.splitlines()[1].split() == ["host", "step", "status", "engine", "seconds", "details"]
    assert without.splitlines()[1].split() == ["host", "step", "status", "seconds", "details"]
    assert "20.10.24+dfsg1" in with_docker and "24.0.7" in with_docker
    assert "20.10.24+dfsg1" not in without


def test_recap_shows_seconds_to_a_tenth():
    assert "12.3" in report.recap(Result("deploy-host", OUTCOMES)) and "0.42" not in report.recap(Result("deploy-host", OUTCOMES))


def test_recap_wraps_long_details():
    message = " ".join(["word"] * 60)

    text = report.recap(Result("trust-registry", [Outcome("deploy1", "trust-registry", FAILED, message)]))

    assert max(len(row) for row in text.splitlines()) < 130
    assert " ".join(text.split()).count("word") == 60


def test_recap_ends_with_the_totals():
    assert report.recap(Result("deploy-host", OUTCOMES)).endswith("\n\n" + report.totals(OUTCOMES))


def test_totals_counts_every_status_per_host_in_first_seen_order():
    assert report.totals(OUTCOMES).splitlines() == [
        "deploy1               : ok=1 changed=1 failed=0 unreachable=0 skipped=1",
        "node1                 : ok=0 changed=0 failed=1 unreachable=0 skipped=0",
        "node-with-a-long-name : ok=0 changed=0 failed=0 unreachable=1 skipped=0",
    ]


def test_totals_of_nothing_is_empty():
    assert report.totals([]) == ""
    assert report.recap(Result("status", [])).splitlines()[0] == "RECAP"


def test_recap_prints_seconds_as_formatted():
    text = report.recap(
        Result("configure-targets", [Outcome("node1", "configure-targets", FAILED, "x", 61.0), Outcome("node2", "s", OK, "y")])
    )

    rows = text.splitlines()[3:5]
    assert rows[0].split()[3] == "61.0"
    assert rows[1].split()[3] == "0.0"


def test_json_has_every_row_with_its_data_the_totals_and_the_task_s_extras():
    rows = [
        Outcome("node1", "pull-images", CHANGED, "pulled 2; holds 3/3", 1.5, "docker 26.1.5", {"held": 3, "pulled": 2}),
        Outcome("node2", "pull-images", UNREACHABLE, "SSH connection to root@192.0.2.12:22 refused"),
    ]

    document = json.loads(report.as_json(Result("pull-images", rows, check=True, extra={"registry": "r:4000"})))

    assert (document["task"], document["check"], document["registry"], document["failed"]) == (
        "pull-images", True, "r:4000", True
    )
    assert document["hosts"][0] == {
        "host": "node1", "step": "pull-images", "status": CHANGED, "message": "pulled 2; holds 3/3",
        "seconds": 1.5, "engine": "docker 26.1.5", "held": 3, "pulled": 2,
    }
    assert document["hosts"][1]["status"] == UNREACHABLE and "data" not in document["hosts"][1]
    assert document["totals"]["node2"] == {OK: 0, CHANGED: 0, FAILED: 0, UNREACHABLE: 1, SKIPPED: 0}


@pytest.mark.parametrize("as_json", [False, True])
def test_finish_prints_once_and_exits_1_when_any_host_failed_or_was_unreachable(capsys, as_json):
    failed = Result("configure-targets", OUTCOMES)

    with pytest.raises(Exit) as caught:
        report.finish(failed, as_json)

    shown = capsys.readouterr().out
    assert caught.value.code == 1
    if as_json:
        assert json.loads(shown)["failed"] is True
    else:
        assert shown.count("RECAP") == 1 and all(f"{o.host} " in shown for o in OUTCOMES)
    report.finish(Result("configure-targets", [OUTCOMES[0], OUTCOMES[1]]), as_json)  # nobody failed: no exit


def test_finish_shows_a_task_s_own_table_instead_of_the_recap(capsys):
    report.finish(Result("status", [OUTCOMES[0]]), render=lambda result: f"TABLE of {len(result.outcomes)}")

    assert capsys.readouterr().out == "TABLE of 1\n"
