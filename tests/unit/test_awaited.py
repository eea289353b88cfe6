"""Answers a run needs only at plan time, asked in the background: read once ready, waited for with a
bound, and a failure or no answer in time is the reading plan's error."""

from __future__ import annotations

import threading

import pytest

from fabfile.model.awaited import in_background
from fabfile.model.plan import PlanError


def test_each_mapping_is_its_part_of_the_answer_once_ready():
    asked = threading.Event()

    def ask():
        asked.set()
        return {"keystone": "sha256:a"}, {}, {"keystone": 7}

    digests, upstream, sizes = in_background(ask, "the registry's digests", 10, 3)

    assert asked.wait(10)  # started at once, not on the first read
    assert digests.get("keystone") == "sha256:a" and digests.get("nova") is None
    assert dict(upstream) == {} and dict(sizes) == {"keystone": 7} and len(sizes) == 1


def test_a_failed_question_is_the_readers_plan_error():
    def ask():
        raise RuntimeError("deploy1 is unreachable")

    [digests] = in_background(ask, "the registry's digests", 10, 1)

    with pytest.raises(PlanError, match="^the registry's digests: deploy1 is unreachable$"):
        digests.get("keystone")


def test_no_answer_in_time_is_a_plan_error_not_a_hang():
    release = threading.Event()

    def ask():
        release.wait(30)
        return ({},)

    [digests] = in_background(ask, "the registry's digests", 0.1, 1)
    try:
        with pytest.raises(PlanError, match="no answer after 0 s"):
            digests.get("keystone")
    finally:
        release.set()
