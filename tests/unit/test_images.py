"""images: the image list, the digest comparisons, the archive index, the scripts and the table."""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest

from fabfile.actions.sync import SyncImages
from fabfile.engines.base import PULLED
from fabfile.engines.docker.engine import DOCKER
from fabfile.engines.docker.paths import DOCKER_SOCKET
from fabfile.images import archive, decide, model, sync_job, sync_plan
from fabfile.images import sync_report as table
from fabfile.images.model import COPIED, PRESENT, TO_COPY, Archived, Image, Manifest, Synced
from fabfile.model.context import Modes
from fabfile.model.inventory import ImageSettings
from fabfile.model.marks import MARK
from fabfile.model.outcome import CHANGED, FAILED
from fabfile.tasks import cli

from .factories import REGISTRY, StandInRun, changed, docker_host, make_ctx, request_of, run_stand_ins

UPSTREAM = "10.0.0.5:5000"
KEYSTONE = Image("openstack.kolla/keystone", "2024.1")
D1, D2 = "sha256:" + "1" * 64, "sha256:" + "2" * 64
C1, C2 = "sha256:" + "a" * 64, "sha256:" + "b" * 64
ABSENT = Manifest(404, error="HTTP 404")


# --- the image list ------------------------------------------------------------------------


def test_services_take_the_tag_and_the_namespace():
    settings = ImageSettings(tag="2024.1", services=("keystone", "nova-api"))

    assert model.image_list(settings) == [
        Image("openstack.kolla/keystone", "2024.1"),
        Image("openstack.kolla/nova-api", "2024.1"),
    ]


def test_names_keep_their_own_namespace_and_tag_and_come_first_once_each():
    settings = ImageSettings(
        namespace="kolla",
        tag="zed",
        names=("horizon", "other.ns/glance-api:2023.2", "keystone:zed"),
        services=("keystone",),
    )

    assert model.image_list(settings) == [
        Image("kolla/horizon", "zed"),
        Image("other.ns/glance-api", "2023.2"),
        Image("kolla/keystone", "zed"),
    ]


def test_an_image_maps_to_the_local_registry_keeping_its_namespace():
    image = Image("openstack.kolla/nova-api", "2024.1-ubuntu-jammy")

    assert image.at("quay.io") == "quay.io/openstack.kolla/nova-api:2024.1-ubuntu-jammy"
    assert image.at(REGISTRY) == f"{REGISTRY}/openstack.kolla/nova-api:2024.1-ubuntu-jammy"


@pytest.mark.parametrize("insecure, base", [(False, "https://quay.io"), (True, "http://quay.io")])
def test_upstream_base(insecure, base):
    assert model.upstream_base(ImageSettings(insecure=insecure, names=("a:b",))) == base


# --- decisions -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "upstream, local, status, message",
    [
        pytest.param(
            Manifest(200, D1, C1, 500), Manifest(200, D1, C1, 500), PRESENT, "same digest", id="same-digest"
        ),
        pytest.param(
            Manifest(200, D1, C1, 500),
            Manifest(200, D2, C1, 480),
            PRESENT,
            "same image as upstream (config digest)",
            id="recompressed",
        ),
        pytest.param(Manifest(200, D1, C1, 500), Manifest(200, D2, C2), TO_COPY, "differs", id="other-image"),
        pytest.param(Manifest(200, D1, C1, 500), ABSENT, TO_COPY, "", id="new"),
        pytest.param(ABSENT, ABSENT, FAILED, "not found upstream (HTTP 404)", id="missing-upstream"),
        pytest.param(ABSENT, Manifest(200, D1, C1), FAILED, "not found upstream", id="gone-upstream"),
        pytest.param(
            Manifest(200, D1, error="no linux/amd64 image in the manifest list"),
            ABSENT,
            FAILED,
            "upstream: no linux/amd64 image",
            id="no-platform",
        ),
        pytest.param(
            Manifest(0, error="timed out"),
            Manifest(200, D1, C1),
            PRESENT,
            "upstream not checked: timed out",
            id="upstream-silent-local-has-it",
        ),
        pytest.param(Manifest(401, error="HTTP 401"), ABSENT, TO_COPY, "", id="docker-may-have-credentials"),
        pytest.param(
            Manifest(200, D1, C1),
            Manifest(0, error="refused"),
            FAILED,
            "local registry: refused",
            id="local-down",
        ),
    ],
)
def test_decide_upstream(upstream, local, status, message):
    result = decide.decide_upstream(KEYSTONE, upstream, local)

    assert (result.status, result.image) == (status, KEYSTONE)
    assert message in result.message
    if status == PRESENT:
        assert (result.digest, result.size) == (local.digest, local.size)
    if status == TO_COPY:
        assert (result.digest, result.size) == (upstream.digest, upstream.size)


ARCHIVED = Archived(f"quay.io/{KEYSTONE.name}", C1, 9000)


@pytest.mark.parametrize(
    "archived, local, status, message",
    [
        (ARCHIVED, Manifest(200, D1, C1, 500), PRESENT, "same image as the archive's"),
        (ARCHIVED, Manifest(200, D1, C2, 500), TO_COPY, "differs from the archive's"),
        (ARCHIVED, ABSENT, TO_COPY, ""),
        (None, ABSENT, FAILED, "not in the archive"),
        (ARCHIVED, Manifest(503, error="HTTP 503"), FAILED, "local registry: HTTP 503"),
    ],
)
def test_decide_archive(archived, local, status, message):
    result = decide.decide_archive(KEYSTONE, archived, local)

    assert (result.status, result.message) == (status, message)
    if status == TO_COPY:
        assert (result.source, result.size) == (ARCHIVED.ref, 9000)


# --- the archive ---------------------------------------------------------------------------


def test_archive_index_of_docker_s_own_layout_and_the_oci_one():
    manifest = [
        {
            "Config": "aa.json",
            "RepoTags": ["quay.io/kolla/a:1", "kolla/a:1"],
            "Layers": ["x/layer.tar", "y/layer.tar"],
        },
        {"Config": "blobs/sha256/bb", "RepoTags": ["kolla/b:1"], "Layers": ["blobs/sha256/l1"]},
        {"Config": "cc.json", "RepoTags": None, "Layers": []},
    ]
    sizes = {"x/layer.tar": 100, "y/layer.tar": 20, "blobs/sha256/l1": 7}

    layers = ("x/layer.tar", "y/layer.tar")
    assert archive.archive_index(manifest, sizes) == {
        "quay.io/kolla/a:1": Archived("quay.io/kolla/a:1", "sha256:aa", 120, "aa.json", layers),
        "kolla/a:1": Archived("kolla/a:1", "sha256:aa", 120, "aa.json", layers),
        "kolla/b:1": Archived("kolla/b:1", "sha256:bb", 7, "blobs/sha256/bb", ("blobs/sha256/l1",)),
    }


def test_archived_as_finds_the_upstream_name_then_the_bare_one():
    by_upstream = {"quay.io/openstack.kolla/keystone:2024.1": ARCHIVED}
    bare = {"openstack.kolla/keystone:2024.1": ARCHIVED}

    assert archive.archived_as(KEYSTONE, by_upstream, "quay.io") == ARCHIVED
    assert archive.archived_as(KEYSTONE, bare, "quay.io") == ARCHIVED
    assert archive.archived_as(KEYSTONE, by_upstream, UPSTREAM) is None


def test_read_archive_of_a_real_tar(tmp_path):
    folder = tmp_path / "saved"
    (folder / "abc").mkdir(parents=True)
    (folder / "abc" / "layer.tar").write_bytes(b"x" * 2048)
    (folder / "ff.json").write_text("{}")
    manifest = [{"Config": "ff.json", "RepoTags": ["kolla/a:1"], "Layers": ["abc/layer.tar"]}]
    (folder / "manifest.json").write_text(json.dumps(manifest))
    subprocess.run(["tar", "-C", str(folder), "-cf", str(tmp_path / "a.tar"), "."], check=True)

    index = archive.read_archive(str(tmp_path / "a.tar"))

    # tar names members ./abc/layer.tar: the index must still find the layer.
    assert index["kolla/a:1"].config == "sha256:ff"


def test_read_archive_that_is_not_one_is_named(tmp_path):
    (tmp_path / "a.tar").write_text("not a tar")

    with pytest.raises(archive.ArchiveError, match=r"a\.tar: not a docker save archive or OCI layout"):
        archive.read_archive(str(tmp_path / "a.tar"))


# --- retries: what the pull script tries again (the job of the old ``decide.transient``) ---------


@pytest.mark.parametrize(
    "message, again",
    [
        ("docker pull x: Get https://quay.io/v2/: net/http: TLS handshake timeout", True),
        ("docker pull x: toomanyrequests: rate limit", True),
        ("docker push y: received unexpected HTTP status: 502 Bad Gateway", True),
        ("docker pull x: manifest unknown: manifest unknown", False),
        ("docker pull x: Error response from daemon: repository x not found", False),
        ("docker pull x: unauthorized: access to the requested resource is not authorized", False),
        ("docker pull x: http: server gave HTTP response to HTTPS client", False),
    ],
)
def test_transient(message, again, tmp_path):
    """A pull that fails with ``message`` once is tried again only when another try may work."""
    (tmp_path / "docker").write_text(
        '#!/bin/sh\necho "$*" >> "$LOG"\n'
        f'[ -e "$LOG.once" ] || {{ touch "$LOG.once"; echo {shlex.quote(message)} >&2; exit 1; }}\n'
        'echo "Digest: sha256:k"\n'
    )
    (tmp_path / "docker").chmod(0o755)
    (tmp_path / "sleep").write_text("#!/bin/sh\n")
    (tmp_path / "sleep").chmod(0o755)
    env = {**os.environ, "PATH": f"{tmp_path}:{os.environ['PATH']}", "LOG": str(tmp_path / "log")}
    ref = KEYSTONE.at(REGISTRY)

    done = subprocess.run(
        ["sh", "-c", DOCKER.pull_script([ref], per_node=1, retries=3).replace(DOCKER_SOCKET, "/nonexistent")],
        env=env, capture_output=True, text=True, check=True, timeout=60,
    )

    calls = (tmp_path / "log").read_text().splitlines()
    assert len(calls) == (2 if again else 1)
    assert done.stdout.startswith(f"{MARK} {PULLED} {ref}" if again else f"{MARK} failed {ref} {message}")


# --- reporting -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "size, shown",
    [(0, "0 B"), (999, "999 B"), (1000, "1.0 kB"), (1_234_567, "1.2 MB"), (5 * 10**9, "5.0 GB")],
)
def test_human(size, shown):
    assert table.decimal_size(size) == shown


def test_progress_line_counts_images_and_bytes_with_rate_and_eta():
    item = Synced(KEYSTONE, COPIED, D1, 2_000_000)

    assert (
        table.progress("deploy1", 2, 5, table.transfer(3_000_000, 10_000_000, 2.0), table.image_done(item))
        == "deploy1 | sync-images | 2/5 images, 3.0 MB/10.0 MB, 1.5 MB/s, ETA 5 s | "
        "openstack.kolla/keystone:2024.1 copied"
    )


@pytest.mark.parametrize(
    "sent, size, seconds, shown",
    [
        (0, 10_000_000, 0.0, "0 B/10.0 MB"),
        (1_000_000, 1_000_000, 1.0, "1.0 MB/1.0 MB, 1.0 MB/s, ETA 0 s"),
        (1_000_000, 400_000_000, 1.0, "1.0 MB/400.0 MB, 1.0 MB/s, ETA 6 min 39 s"),
        (1_000_000, 9_000_000_000, 1.0, "1.0 MB/9.0 GB, 1.0 MB/s, ETA 2 h 29 min"),
    ],
)
def test_transfer_shows_bytes_rate_and_eta(sent, size, seconds, shown):
    assert table.transfer(sent, size, seconds) == shown


RESULTS = [
    Synced(KEYSTONE, COPIED, D1, 2_000_000),
    Synced(Image("openstack.kolla/nova-api", "2024.1"), PRESENT, D2, 3_000_000, "same digest as upstream"),
    Synced(Image("openstack.kolla/missing", "2024.1"), FAILED, message="not found upstream (HTTP 404)"),
]


def test_table_has_image_tag_digest_size_status_per_image_then_totals():
    text = table.table(RESULTS)
    lines = text.splitlines()

    assert lines[0] == "IMAGES"
    assert lines[1].split() == ["image", "tag", "digest", "size", "status", "details"]
    assert lines[3].split() == ["openstack.kolla/keystone", "2024.1", D1, "2.0", "MB", "copied"]
    assert lines[5].split()[:5] == ["openstack.kolla/missing", "2024.1", "-", "-", "failed"]
    assert lines[-1] == "sync-images: 3 images: 1 copied, 1 present, 1 failed (2.0 MB)"


def test_table_in_check_mode_says_nothing_was_copied():
    assert table.table([Synced(KEYSTONE, TO_COPY, D1, 10)], check=True).splitlines()[0] == (
        "IMAGES (check mode: nothing was copied)"
    )


def test_the_watch_turns_the_copy_s_marks_into_progress_lines_it_returns():
    item = Synced(KEYSTONE, TO_COPY, D1, 2_000_000)
    watch = table.Watch("deploy1", [item])

    assert watch.line("plain output") is None
    assert watch.line(f"{MARK} plan 10000000 3 0 0") is None
    shown = watch.line(f"{MARK} image copied {KEYSTONE.name} {D2}")

    assert shown.startswith("deploy1 | sync-images | 1/1 images, 0 B/10.0 MB")
    assert shown.endswith(f"| {KEYSTONE.name} copied")
    failed = watch.line(f"{MARK} image failed {KEYSTONE.name} PUT manifest: HTTP 500")
    assert failed.endswith(f"{KEYSTONE.name} failed: PUT manifest: HTTP 500")


# --- the sync as a plan: decisions from one round trip of queries, one copy job -----------------

NOVA = Image("openstack.kolla/nova-api", "2024.1")
GLANCE = Image("openstack.kolla/glance-api", "2024.1")
SYNCED = [KEYSTONE, NOVA, GLANCE]
SOURCE = sync_plan.SyncSource(ImageSettings(tag="2024.1", services=("keystone", "nova-api", "glance-api")))


def manifests_answer(request: dict) -> dict:
    """The deployment host's answer: the local registry holds keystone (as upstream) and an older nova-api."""
    found = {
        ("http://192.0.2.10:4000", KEYSTONE.path): {"status": 200, "digest": D1, "config": C1, "size": 500},
        ("http://192.0.2.10:4000", NOVA.path): {"status": 200, "digest": D2, "config": C2, "size": 300},
        ("https://quay.io", KEYSTONE.path): {"status": 200, "digest": D1, "config": C1, "size": 500},
        ("https://quay.io", NOVA.path): {"status": 200, "digest": D1, "config": C1, "size": 700},
        ("https://quay.io", GLANCE.path): {"status": 200, "digest": D2, "config": C2, "size": 900},
    }
    absent = {"status": 404, "digest": "", "error": "HTTP 404"}
    return {"manifests": [found.get((base, path), absent) for base, path, *_ in request["manifests"]]}


def copies(script: str) -> str:
    """The copy program on the deployment host: its marks, then its one JSON answer."""
    request = request_of(script)
    keys = [f"{image['repo']}:{image['tag']}" for image in request["copy"]["images"]]
    lines = [f"{MARK} plan 1600 2 0 0"]
    lines += [f"{MARK} image copied {key} sha256:{'e' * 64}" for key in keys]
    answer = {
        "images": [
            {"repo": image["repo"], "tag": image["tag"], "status": "copied", "digest": "sha256:" + "e" * 64}
            for image in request["copy"]["images"]
        ],
        "fetched": 2,
        "mounted": 0,
        "bytes": 1600,
    }
    return "\n".join([*lines, json.dumps(answer)]) + "\n"


def synced(modes: Modes, answer=copies, source: sync_plan.SyncSource = SOURCE):
    ctx = replace(make_ctx(), modes=modes)

    def make(host, host_ctx):
        return StandInRun(host, host_ctx, on_host=docker_host(), answers={"manifests": manifests_answer}, answer=answer)

    result, runs = run_stand_ins(SyncImages(SYNCED, source), ctx, [ctx.inventory.deploy_host], make)
    [outcome] = result.outcomes
    return outcome, runs["deploy1"]


def test_both_registries_are_asked_in_one_query_the_local_one_first():
    _, run = synced(Modes(check=True))

    asked = run.asked["manifests"]["manifests"]
    # The local registry's platforms too: what the lock records of an image already there.
    local = [["http://192.0.2.10:4000", image.path, image.tag, "platforms"] for image in SYNCED]
    assert asked == local + [["https://quay.io", image.path, image.tag] for image in SYNCED]


def test_check_mode_copies_nothing_and_says_what_would_be_copied(capsys):
    outcome, run = synced(Modes(check=True))

    assert run.scripts == []
    assert outcome.status == CHANGED
    assert outcome.message == "3 images: 2 to copy, 1 present (1.6 kB), from https://quay.io to 192.0.2.10:4000"
    shown = capsys.readouterr().out
    assert "IMAGES (check mode: nothing was copied)" in shown
    assert [row["status"] for row in outcome.data["images"]] == [PRESENT, TO_COPY, TO_COPY]


def test_diff_mode_lists_each_image_that_would_be_copied_and_from_where(capsys):
    synced(Modes(check=True, diff=True))

    shown = capsys.readouterr().out
    assert (
        f"+ {NOVA.name} (700 bytes) from https://quay.io\n+ {GLANCE.name} (900 bytes) from https://quay.io\n" in shown
    )
    assert f"+ {KEYSTONE.name}" not in shown


def test_a_sync_copies_what_the_registry_lacks_in_one_job_and_each_row_takes_the_pushed_digest():
    outcome, run = synced(Modes())

    [script] = run.scripts
    request = request_of(script)["copy"]
    assert request["source"] == "https://quay.io" and request["target"] == "http://192.0.2.10:4000"
    assert [image["repo"] for image in request["images"]] == [NOVA.path, GLANCE.path]
    assert outcome.status == CHANGED
    assert outcome.message == "3 images: 2 copied, 1 present (1.6 kB)"
    rows = {row["image"]: row for row in outcome.data["images"]}
    assert rows[NOVA.name]["digest"] == "sha256:" + "e" * 64 and rows[NOVA.name]["status"] == COPIED
    assert rows[KEYSTONE.name] == {"image": KEYSTONE.name, "status": PRESENT, "digest": D1, "size": 500,
                                   "message": "same digest as upstream", "upstream_digest": D1, "platforms": [],
                                   "snapshot": ""}
    assert {key: outcome.data[key] for key in ("fetched", "mounted", "bytes")} == {"fetched": 2, "mounted": 0, "bytes": 1600}


def test_an_image_the_copy_failed_or_said_nothing_of_fails_the_row():
    def half(script: str) -> str:
        answer = {"images": [{"repo": NOVA.path, "tag": NOVA.tag, "status": "failed", "error": "PUT: HTTP 500"}]}
        return json.dumps(answer) + "\n"

    outcome, _ = synced(Modes(), half)

    assert outcome.status == FAILED
    rows = {row["image"]: row for row in outcome.data["images"]}
    assert (rows[NOVA.name]["status"], rows[NOVA.name]["message"]) == (FAILED, "PUT: HTTP 500")
    assert (rows[GLANCE.name]["status"], rows[GLANCE.name]["message"]) == (FAILED, "the copy said nothing of it")


def test_a_query_that_did_not_answer_fails_the_row_and_copies_nothing():
    ctx = make_ctx()
    facts = changed(docker_host(), answers={"manifests": {"error": "registry query: no answer (python3: not found)"}})

    plan = sync_plan.sync_planner(SYNCED, SOURCE)(facts, ctx)

    assert plan.error == "registry query: no answer (python3: not found)" and not plan.jobs


def test_an_archive_is_uploaded_once_and_the_program_reads_it_from_the_run_s_folder(tmp_path):
    folder = tmp_path / "saved"
    (folder / "abc").mkdir(parents=True)
    (folder / "abc" / "layer.tar").write_bytes(b"x" * 2048)
    config = json.dumps({"rootfs": {"diff_ids": ["sha256:" + "d" * 64]}}).encode()
    (folder / "ff.json").write_bytes(config)
    saved = [{"Config": "ff.json", "RepoTags": [f"quay.io/{KEYSTONE.name}"], "Layers": ["abc/layer.tar"]}]
    (folder / "manifest.json").write_text(json.dumps(saved))
    path = tmp_path / "images.tar"
    subprocess.run(["tar", "-C", str(folder), "-cf", str(path), "."], check=True)
    source = sync_plan.SyncSource(ImageSettings(tag="2024.1", services=("keystone",)), str(path), archive.read_archive(str(path)))
    facts = changed(docker_host(), answers={"manifests": {"manifests": [{"status": 404, "error": "HTTP 404"}]}})

    plan = sync_plan.sync_planner([KEYSTONE], source)(facts, make_ctx())

    [job] = plan.jobs
    assert job.uploads == [(str(path), sync_job.ARCHIVE_NAME)]
    request = request_of(job.script)["copy"]
    assert request["archive"] == f"$UPLOADS/{sync_job.ARCHIVE_NAME}" and "source" not in request
    # Each blob is streamed out of the uploaded tar by its member: nothing is read there but these.
    config_digest = "sha256:" + hashlib.sha256(config).hexdigest()
    assert request["images"][0]["blobs"] == {config_digest: "ff.json", "sha256:" + "d" * 64: "abc/layer.tar"}


def test_image_settings_from_a_file_or_the_inventory(tmp_path):
    from .factories import make_inventory

    inventory = make_inventory()
    with pytest.raises(cli.Exit) as caught:
        cli.image_settings_or_exit(inventory, "")
    assert caught.value.code == 2 and "images: missing (or give --images FILE)" in caught.value.message

    listed = tmp_path / "images.yaml"
    listed.write_text("names: [keystone:zed]\n")
    assert cli.image_settings_or_exit(inventory, str(listed)).names == ("keystone:zed",)

    listed.write_text("names: [Keystone]\n")
    with pytest.raises(cli.Exit) as caught:
        cli.image_settings_or_exit(inventory, str(listed))
    assert caught.value.code == 2 and str(Path(listed)) in caught.value.message


@pytest.mark.parametrize("name", ["sync-images", "kolla-globals", "pull-images", "status"])
def test_each_new_task_has_a_one_line_docstring_and_help_for_every_option(name):
    import inspect

    from fabfile import ns

    task = ns[name]
    options = [p for p in inspect.signature(task.body).parameters if p != "c"]
    assert task.__doc__.strip().count("\n") == 0
    assert sorted(task.help) == sorted(options)


# --- tag filters: every matching tag of each listed repository ------------------------------------


def test_a_tag_filter_chooses_among_the_listed_repositories_tags_starting_with_the_tag():
    settings = ImageSettings(tag="2025.1", services=("keystone",), names=("kolla/x", "kolla/y:1"), tag_filter="-aarch64$")
    listed = {
        "openstack.kolla/keystone": ["2025.1-ubuntu-noble", "2025.1-ubuntu-noble-aarch64", "2024.1-aarch64", "bad tag-aarch64"],
        "kolla/x": ["2025.1-aarch64", "master-aarch64"],
    }

    assert model.filtered_repositories(settings) == ["kolla/x", "openstack.kolla/keystone"]
    assert model.image_list(settings, listed) == [
        Image("kolla/x", "2025.1-aarch64"), Image("kolla/y", "1"), Image("openstack.kolla/keystone", "2025.1-ubuntu-noble-aarch64"),
    ]
    # Before the tags are known, only what the list tags itself.
    assert model.image_list(settings) == [Image("kolla/y", "1")]
    assert model.filtered_repositories(ImageSettings(tag="1", services=("keystone",))) == []
