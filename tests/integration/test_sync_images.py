"""Syncer end to end on this machine: its scripts run under sh here, between two real registries."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass, field

from fabfile.images.model import COPIED, PRESENT, TO_COPY, image_list
from fabfile.images.sync_plan import Syncer
from fabfile.model.errors import RemoteError
from fabfile.model.inventory import Host, ImageSettings
from tests.unit.factories import make_ctx

from .registries import Registry, push_image


@dataclass
class LocalRun:
    """A HostRun whose host is this machine: scripts under sh, output lines handed on as they come."""

    ctx: object
    host: Host = field(default_factory=lambda: Host("deploy1", "127.0.0.1"))
    check: bool = False
    scripts: list[str] = field(default_factory=list)

    def run(self, script: str, on_line=None, timeout: int = 0) -> str:
        self.scripts.append(script)
        process = subprocess.Popen(["sh", "-c", script], stdout=subprocess.PIPE, text=True)
        lines = []
        for line in process.stdout:
            lines.append(line)
            if on_line:
                on_line(line.rstrip("\n"))
        if process.wait(120):
            raise RemoteError(f"exit {process.returncode}: {''.join(lines)[-300:]}", process.returncode)
        return "".join(lines)

    def upload(self, local: str, name: str, callback=None) -> str:
        return shutil.copy(local, local + ".uploaded")


def syncer(upstream: Registry, local: Registry, **settings) -> tuple[Syncer, list]:
    ctx = make_ctx({"port": local.port}, address="127.0.0.1")
    names = ("kolla/keystone:1", "kolla/nova-api:1", "kolla/missing:1")
    wanted = ImageSettings(registry=upstream.base.removeprefix("http://"), insecure=True, names=names, **settings)
    return Syncer(LocalRun(ctx), wanted, "", {}, workers=4, retries=0), image_list(wanted)


def test_sync_copies_what_is_missing_with_progress_then_a_second_sync_is_one_round_trip(upstream, local, capsys):
    shared = os.urandom(200_000)
    made = [push_image(upstream, f"kolla/{name}", "1", [shared, os.urandom(1000)]) for name in ("keystone", "nova-api")]
    sync, images = syncer(upstream, local)

    plan = sync.plan(images)
    assert [item.status for item in plan] == [TO_COPY, TO_COPY, "failed"]
    results = sync.copy(plan)

    assert [item.status for item in results] == [COPIED, COPIED, "failed"]
    assert [item.digest for item in results[:2]] == [m.digest for m in made]
    shown = capsys.readouterr().out
    assert "deploy1 | sync-images | 2/2 images, 202.1 kB/202.1 kB, " in shown and "/s, ETA" in shown
    assert len(sync.run.scripts) == 3  # the queries, the copy, the read-back

    again, images = syncer(upstream, local)
    plan = again.plan(images)
    assert [item.status for item in again.copy(plan)] == [PRESENT, PRESENT, "failed"]
    assert len(again.run.scripts) == 1


def test_check_mode_copies_nothing(upstream, local):
    push_image(upstream, "kolla/keystone", "1", [os.urandom(1000)])
    sync, images = syncer(upstream, local)
    sync.run.check = True

    plan = sync.plan(images)

    assert sync.copy(plan) == plan and len(sync.run.scripts) == 1
    assert not local.manifest_digest("kolla/keystone", "1")
