"""A busy upstream (a loopback proxy answering 429 with Retry-After) is waited out, not failed, and never
gets more requests at once than images.max_requests."""

from __future__ import annotations

import os

import pytest

from fabfile.actions.sync import SyncImages
from fabfile.images.model import image_list
from fabfile.images.sync_plan import SyncSource
from fabfile.model.inventory import ImageSettings
from fabfile.model.outcome import CHANGED

from .local_run import run_locally
from .proxy import BusyUpstream
from .registries import Registry, push_image

# The local registry read-only, as every instance nodes reach is; the copy goes through the writer.
pytestmark = pytest.mark.usefixtures("writer_host")


@pytest.fixture
def busy(upstream: Registry):
    """The upstream behind a proxy that refuses every fourth request (1 s Retry-After), blob GETs included."""
    proxy = BusyUpstream(upstream.port, lambda method, path, count: "1" if count % 4 == 2 else None)
    yield proxy
    proxy.stop()


def test_a_sync_from_an_upstream_answering_429_waits_it_out_and_copies_everything(upstream, local, busy, capsys):
    names = [f"kolla/service-{i}" for i in range(6)]
    made = [push_image(upstream, name, "1", [os.urandom(50_000), os.urandom(20_000)]) for name in names]
    settings = ImageSettings(registry=busy.address, insecure=True, names=tuple(f"{n}:1" for n in names), max_requests=2)
    action = SyncImages(image_list(settings), SyncSource(settings, workers=6, retries=0))

    result, _ = run_locally(action, local.port)

    [row] = result.outcomes
    assert row.status == CHANGED and "6 images: 6 copied" in row.message, row
    assert f"http://{busy.address} waited " in row.message and " x 429)" in row.message
    for image in made:
        assert local.manifest_digest(image.repo, "1") == image.digest
    shown = capsys.readouterr().out
    assert f"{busy.address} answered 429 Too Many Requests: waiting 1 s, as its Retry-After asks" in shown
    assert busy.refused >= 3
    # Six workers, but never more than max_requests at once at the upstream (the query's and the copy's).
    assert busy.busiest <= 2
