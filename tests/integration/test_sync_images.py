"""sync-images end to end on this machine: the real action through the real engine, between two real registries.

The local registry is read-only, as every instance nodes reach is: the copy goes through the writer (the
real registry binary on the same storage, on a unix socket), which the job starts and removes itself.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from fabfile.actions.sync import SyncImages
from fabfile.images.model import image_list
from fabfile.images.sync_plan import SyncSource
from fabfile.model.context import Modes
from fabfile.model.inventory import ImageSettings
from fabfile.model.outcome import CHANGED, FAILED
from fabfile.registry import writer

from . import docker_stand_in
from .local_run import run_locally
from .registries import Registry, push_image

NAMES = ("kolla/keystone:1", "kolla/nova-api:1", "kolla/missing:1")
# The local registry read-only, as every instance nodes reach is; the copy goes through the writer.
pytestmark = pytest.mark.usefixtures("writer_host")


def sync(upstream: Registry, local: Registry, modes: Modes | None = None):
    settings = ImageSettings(registry=upstream.base.removeprefix("http://"), insecure=True, names=NAMES)
    action = SyncImages(image_list(settings), SyncSource(settings, workers=4, retries=0))
    result, runs = run_locally(action, local.port, modes)
    return result.outcomes[0], runs[0]


def test_the_read_only_registry_refuses_a_push_that_the_sync_s_writer_takes(upstream, local, writer_host):
    made = push_image(upstream, "kolla/keystone", "1", [os.urandom(1000)])
    with pytest.raises(Exception, match="405"):
        push_image(local, "kolla/other", "1", [os.urandom(1000)])

    row, _ = sync(upstream, local)

    assert row.status == FAILED and "3 images: 1 copied, 2 failed" in row.message, row
    assert local.manifest_digest("kolla/keystone", "1") == made.digest
    started = [call for call in docker_stand_in.calls(writer_host) if call.startswith("run -d --name registry-writer")]
    assert len(started) == 1 and " -p " not in started[0]
    # Removed after the copy: nothing takes writes once the job ended.
    assert docker_stand_in.calls(writer_host)[-1] == "rm -f registry-writer"
    assert not Path(writer.WRITER_SOCKET).exists()


def test_sync_copies_what_is_missing_with_progress_then_a_second_sync_is_one_round_trip(upstream, local, capsys):
    shared = os.urandom(200_000)
    made = [push_image(upstream, f"kolla/{name}", "1", [shared, os.urandom(1000)]) for name in ("keystone", "nova-api")]

    row, run = sync(upstream, local)

    assert row.status == FAILED and "3 images: 2 copied, 1 failed" in row.message, row
    images = {image["image"]: image for image in row.data["images"]}
    assert [images[f"kolla/{n}:1"]["digest"] for n in ("keystone", "nova-api")] == [m.digest for m in made]
    assert images["kolla/missing:1"]["status"] == "failed"
    for image in made:
        assert local.manifest_digest(image.repo, image.tag) == image.digest
    shown = capsys.readouterr().out
    assert "deploy1 | sync-images | 2/2 images, 202.5 kB/202.5 kB, " in shown and "/s, ETA" in shown
    assert "IMAGES\n" in shown
    assert len(run.scripts) == 2  # the facts (both registries' manifests), the copy

    again, run = sync(upstream, local)
    assert again.status == FAILED and "2 present, 1 failed" in again.message
    assert len(run.scripts) == 1


def test_check_mode_copies_nothing_and_says_what_it_would(upstream, local, capsys):
    push_image(upstream, "kolla/keystone", "1", [os.urandom(1000)])

    row, run = sync(upstream, local, Modes(check=True))

    assert row.status == CHANGED and "1 to copy" in row.message
    assert len(run.scripts) == 1 and not local.manifest_digest("kolla/keystone", "1")
    assert "IMAGES (check mode: nothing was copied)" in capsys.readouterr().out


def test_diff_mode_lists_each_image_it_would_copy_and_from_where(upstream, local, capsys):
    push_image(upstream, "kolla/keystone", "1", [os.urandom(1000)])

    sync(upstream, local, Modes(check=True, diff=True))

    shown = capsys.readouterr().out
    assert "+ kolla/keystone:1 (" in shown and f"from {upstream.base.replace('http', 'https')}" not in shown
    assert f"from http://{upstream.base.removeprefix('http://')}" in shown
