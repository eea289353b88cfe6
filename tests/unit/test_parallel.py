"""The default parallelism suits the fleet: every host at once up to a cap, lowered by a small open-files limit."""

from __future__ import annotations

import resource
import threading
from contextlib import contextmanager

from invoke import Config, Context

from fabfile import ns
from fabfile.engine import runner
from fabfile.model.inventory import Host
from fabfile.tasks.cli import parallel_or_default

from .factories import StandInRun, make_ctx, run_stand_ins
from .test_engine import Probe


@contextmanager
def open_files_limit(soft: int):
    """This process's soft RLIMIT_NOFILE at ``soft`` for a while (lowering it needs no privilege)."""
    before = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, before[1]))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, before)


def context(**settings) -> Context:
    defaults = ns.configuration()
    defaults["kolla_registry"] = {**defaults["kolla_registry"], **settings}
    return Context(Config(defaults=defaults))


def test_without_a_flag_or_setting_every_host_up_to_the_cap():
    with open_files_limit(4096):
        assert runner.default_parallel() == runner.PARALLEL_CAP == 100
        assert parallel_or_default(context(), 0) == 100


def test_a_low_open_files_limit_lowers_the_default():
    with open_files_limit(256):
        assert runner.default_parallel() == (256 - runner.FILES_KEPT) // runner.FILES_PER_HOST == 48
    with open_files_limit(70):
        assert runner.default_parallel() == 1


def test_the_flag_then_the_setting_win_over_the_default():
    assert parallel_or_default(context(parallel=7), 0) == 7
    assert parallel_or_default(context(parallel=7), 3) == 3
    # sync-images keeps its own, smaller default: it copies through one registry.
    assert parallel_or_default(context(), 0, "sync_parallel") == 4


class Slow(StandInRun):
    """A stand-in whose facts wait (a second at most) for every host to be in flight, counting how many are."""

    arrived = threading.Condition()
    now = 0
    most = 0
    expected = 0

    def gather(self, sections=None):
        with Slow.arrived:
            Slow.now += 1
            Slow.most = max(Slow.most, Slow.now)
            Slow.arrived.notify_all()
            Slow.arrived.wait_for(lambda: Slow.most >= Slow.expected, timeout=1)
            Slow.now -= 1
        return super().gather(sections)


def test_forty_hosts_run_at_once_by_default_not_in_waves_of_ten():
    hosts = [Host(f"node{i}", f"192.0.2.{i}") for i in range(1, 41)]
    Slow.now, Slow.most, Slow.expected = 0, 0, len(hosts)
    with open_files_limit(4096):
        result, _ = run_stand_ins(Probe(""), make_ctx({"address": "192.0.2.250"}), hosts, Slow, parallel_or_default(context(), 0))
    assert len({row.host for row in result.outcomes}) == 40
    assert Slow.most == 40
