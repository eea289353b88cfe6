"""The copy helper, run as the deployment host runs it (sh, python3 on stdin), between two real registries."""

from __future__ import annotations

import json
import os
import signal
import subprocess

from fabfile import payload
from fabfile.model.marks import MARK, marks

from .registries import Registry, push_image, push_index

BASE = os.urandom(300_000)  # one layer every image shares


def request(upstream: Registry, local: Registry, images, **job) -> dict:
    job = {"source": upstream.base, "target": local.base, "workers": 4, "retries": 0, **job}
    return {"copy": {**job, "images": [{"repo": repo, "tag": tag} for repo, tag in images]}}


def copy(wanted: dict) -> tuple[dict, str]:
    """Run the helper under sh; its answer and its whole output."""
    script = payload.script(wanted, payload.COPY, "copy_answer")
    done = subprocess.run(["sh", "-c", script], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1]), done.stdout


def seed(upstream: Registry) -> list:
    """Three images sharing BASE (one of them also shares a second layer), and their Made."""
    shared = os.urandom(50_000)
    return [
        push_image(upstream, "kolla/keystone", "1", [BASE, shared, os.urandom(40_000)]),
        push_image(upstream, "kolla/nova-api", "1", [BASE, shared, os.urandom(70_000)]),
        push_image(upstream, "kolla/glance-api", "1", [BASE, os.urandom(10_000)]),
    ]


def test_a_set_sharing_layers_is_copied_with_upstream_digests_each_blob_fetched_once(upstream, local):
    made = seed(upstream)

    answer, output = copy(request(upstream, local, [(m.repo, m.tag) for m in made]))

    assert [image["status"] for image in answer["images"]] == ["copied"] * 3, answer
    for image in made:
        assert local.manifest_digest(image.repo, image.tag) == image.digest == upstream.manifest_digest(image.repo, "1")
        assert all(local.has(image.repo, blob) for blob in image.blobs)
    unique = {blob for image in made for blob in image.blobs}
    gets = upstream.blob_gets()
    assert set(gets) == unique and set(gets.values()) == {1}, gets
    # BASE in three repositories, the second shared layer and the config in more than one:
    # fetched once, mounted into the others.
    pairs = sum(len(set(image.blobs)) for image in made)
    assert (answer["fetched"], answer["mounted"]) == (len(unique), pairs - len(unique))
    assert marks(output, "plan") == [f"{answer['bytes']} {len(unique)} 0 0"]
    assert len(marks(output, "image")) == 3


def test_a_second_run_copies_nothing(upstream, local):
    made = seed(upstream)
    wanted = request(upstream, local, [(m.repo, m.tag) for m in made])
    copy(wanted)
    before = upstream.blob_gets()

    answer, _ = copy(wanted)

    assert (answer["fetched"], answer["mounted"], answer["bytes"]) == (0, 0, 0)
    assert upstream.blob_gets() == before
    assert [image["status"] for image in answer["images"]] == ["copied"] * 3


def test_an_interrupted_copy_resumes_with_only_what_is_missing(upstream, local):
    made = [push_image(upstream, f"kolla/big-{i}", "1", [os.urandom(400_000) for _ in range(3)]) for i in range(3)]
    wanted = request(upstream, local, [(m.repo, m.tag) for m in made], workers=1)
    script = payload.script(wanted, payload.COPY, "copy_answer")
    helper = subprocess.Popen(["sh", "-c", script], stdout=subprocess.PIPE, text=True, start_new_session=True)
    stored = 0
    for line in helper.stdout:
        stored += line.startswith(f"{MARK} blob ")
        if stored == 5:
            os.killpg(helper.pid, signal.SIGKILL)
            break
    helper.wait(10)
    helper.stdout.close()
    # Killed before the images were all there: no tag names a missing blob meanwhile.
    for image in made:
        pushed = local.manifest_digest(image.repo, image.tag)
        assert not pushed or all(local.has(image.repo, blob) for blob in image.blobs)

    answer, _ = copy(wanted)

    assert [image["status"] for image in answer["images"]] == ["copied"] * 3
    assert all(local.manifest_digest(m.repo, m.tag) == m.digest for m in made)
    # The five blobs stored before the kill are not fetched again (the one in flight may be).
    # Each blob crossed once over both runs (and the one in flight at the kill, maybe twice).
    unique = {blob for image in made for blob in image.blobs}
    assert sum(upstream.blob_gets().values()) <= len(unique) + 1
    assert answer["fetched"] < len(unique)


def test_all_platforms_of_a_list_are_copied_as_is(upstream, local):
    index, children = push_index(upstream, "kolla/multi", "1", {"amd64": [BASE], "arm64": [os.urandom(1000)]})

    answer, _ = copy(request(upstream, local, [("kolla/multi", "1")]))

    assert answer["images"][0]["status"] == "copied", answer
    assert local.manifest_digest("kolla/multi", "1") == index.digest
    assert all(local.has("kolla/multi", blob) for made in children.values() for blob in made.blobs)


def test_platforms_keep_only_those_named_in_a_new_index(upstream, local):
    index, children = push_index(upstream, "kolla/multi", "1", {"amd64": [BASE], "arm64": [os.urandom(1000)]})

    answer, _ = copy(request(upstream, local, [("kolla/multi", "1")], platforms=["linux/amd64"]))

    assert answer["images"][0]["status"] == "copied", answer
    copied = local.manifest("kolla/multi", "1")
    assert [entry["digest"] for entry in copied["manifests"]] == [children["amd64"].digest]
    assert local.manifest_digest("kolla/multi", "1") != index.digest
    assert not any(local.has("kolla/multi", blob) for blob in children["arm64"].blobs[1:])


def test_a_missing_image_fails_alone(upstream, local):
    made = seed(upstream)[:1]

    answer, _ = copy(request(upstream, local, [(made[0].repo, "1"), ("kolla/missing", "1")]))

    statuses = {image["repo"]: (image["status"], image.get("error", "")) for image in answer["images"]}
    assert statuses["kolla/keystone"] == ("copied", "")
    assert statuses["kolla/missing"][0] == "failed" and "404" in statuses["kolla/missing"][1]
