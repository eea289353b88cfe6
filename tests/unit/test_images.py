"""images: the image list, the digest comparisons, the archive index, the scripts and the table."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from fabfile.images import archive, decide, model, sync
from fabfile.images import sync_report as table
from fabfile.images.model import COPIED, PRESENT, TO_COPY, Archived, Image, Manifest, Synced
from fabfile.model.errors import RemoteError as StepFailed
from fabfile.model.inventory import ImageSettings
from fabfile.model.outcome import FAILED
from fabfile.tasks import cli

from .factories import REGISTRY

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


# --- retries -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "message, again",
    [
        ("exit 1: docker pull x: Get https://quay.io/v2/: net/http: TLS handshake timeout", True),
        ("exit 1: docker pull x: toomanyrequests: rate limit", True),
        ("exit 1: docker push y: received unexpected HTTP status: 502 Bad Gateway", True),
        ("exit 1: docker pull x: manifest unknown: manifest unknown", False),
        ("exit 1: docker pull x: Error response from daemon: repository x not found", False),
        ("exit 1: docker pull x: unauthorized: access to the requested resource is not authorized", False),
        ("exit 1: docker pull x: http: server gave HTTP response to HTTPS client", False),
    ],
)
def test_transient(message, again):
    assert decide.transient(message) is again


class Flaky:
    def __init__(self, *errors: str) -> None:
        self.errors = list(errors)
        self.calls = 0

    def __call__(self) -> None:
        self.calls += 1
        if self.errors:
            raise StepFailed(self.errors.pop(0), 1)


def test_retrying_tries_again_after_a_transient_error():
    attempt = Flaky("exit 1: timeout", "exit 1: 502 Bad Gateway")

    assert decide.retrying(attempt, retries=3, delay=0) == ""
    assert attempt.calls == 3


def test_retrying_gives_up_at_once_on_a_permanent_error():
    attempt = Flaky("exit 1: manifest unknown", "never seen")

    assert decide.retrying(attempt, retries=3, delay=0) == "exit 1: manifest unknown"
    assert attempt.calls == 1


def test_retrying_gives_up_after_the_retries_and_says_how_many_attempts():
    attempt = Flaky(*["exit 1: timeout"] * 5)

    assert decide.retrying(attempt, retries=2, delay=0) == "exit 1: timeout (after 3 attempts)"
    assert attempt.calls == 3


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


def test_read_back_takes_the_local_registry_s_digest_or_fails_the_image():
    copied = Synced(KEYSTONE, COPIED, D1, 100)

    assert sync.read_back_one(copied, Manifest(200, D2, C1, 90)) == Synced(KEYSTONE, COPIED, D2, 90)
    failed = sync.read_back_one(copied, ABSENT)
    assert failed.status == FAILED and "the registry does not list it" in failed.message


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
