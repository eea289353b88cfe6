"""Answers a run needs only at plan time, asked in the background: read once ready, waited for with a
bound, and a failure or no answer in time is the reading plan's error."""

from __future__ import annotations

import threading
from concurrent.futures import Future

import pytest

from fabfile.model.awaited import parts
from fabfile.model.plan import PlanError


def answered_later(answer) -> Future:
    """A future another thread answers a moment from now."""
    future: Future = Future()
    threading.Timer(0.05, answer, args=(future,)).start()
    return future


def test_each_mapping_is_its_part_of_the_answer_once_ready():
    future = answered_later(lambda f: f.set_result(({"keystone": "sha256:a"}, {}, {"keystone": 7})))

    digests, upstream, sizes = parts(future, "the registry's digests", 10, 3)

    assert digests.get("keystone") == "sha256:a" and digests.get("nova") is None
    assert dict(upstream) == {} and dict(sizes) == {"keystone": 7} and len(sizes) == 1


def test_a_failed_question_is_the_readers_plan_error():
    future = answered_later(lambda f: f.set_exception(RuntimeError("deploy1 is unreachable")))

    [digests] = parts(future, "the registry's digests", 10, 1)

    with pytest.raises(PlanError, match="^the registry's digests: deploy1 is unreachable$"):
        digests.get("keystone")


def test_no_answer_in_time_is_a_plan_error_not_a_hang():
    [digests] = parts(Future(), "the registry's digests", 0.1, 1)

    with pytest.raises(PlanError, match="no answer after 0 s"):
        digests.get("keystone")
