"""prune-registry's planner: which tags and manifests go, from what the registry answered."""

from __future__ import annotations

import pytest

from fabfile.images.lock import Lock, LockEntry
from fabfile.images.model import Image
from fabfile.images.prune_plan import (
    CURRENT,
    DELETED,
    KEPT,
    LEFT_ALONE,
    NEWEST,
    OUTSIDE,
    PINNED,
    SAME_IMAGE,
    SINCE,
    TO_DELETE,
    UNDATED,
    UNREAD,
    Repository,
    Tag,
    created_seconds,
    pins_from,
    plan_prune,
)
from fabfile.images.prune_report import kept_text, table, tags_data, totals
from fabfile.images.prune_result import Rechecked, after_deletes
from fabfile.model.context import PROBE_REPOSITORY
from fabfile.model.outcome import FAILED

KEYSTONE = "openstack.kolla/keystone"
NOVA = "openstack.kolla/nova-api"


def digest(name: str) -> str:
    return "sha256:" + name.encode().hex().ljust(64, "0")[:64]


def tag(
    name: str, image: str = "", day: int | None = None, children=(), blobs=(), repository=KEYSTONE
) -> Tag:
    """A tag pointing at ``image`` (default: its own image), made on day ``day`` of January 2024."""
    return Tag(
        repository,
        name,
        digest(image or name),
        None if day is None else created_seconds(f"2024-01-{day:02}T00:00:00Z"),
        tuple(digest(child) for child in children),
        tuple((digest(blob), size) for blob, size in blobs),
    )


def repo(*tags: Tag, name: str = KEYSTONE) -> Repository:
    return Repository(name, tags)


def current(*names: str, path: str = KEYSTONE) -> list[Image]:
    return [Image(path, name) for name in names]


def names(tags) -> list[str]:
    return [getattr(t, "tag", t).name for t in tags]


def test_the_current_list_and_the_newest_other_image_stay_the_rest_goes():
    registry = repo(tag("2023.1", day=1), tag("2024.1", day=4), tag("2023.2", day=3), tag("zed", day=2))

    [plan] = plan_prune([registry], current("2024.1"), keep=1).repositories

    assert [(k.tag.name, k.why) for k in plan.kept] == [("2024.1", CURRENT), ("2023.2", NEWEST)]
    assert names(plan.deleted) == ["zed", "2023.1"]  # newest first
    assert plan.manifests == (digest("zed"), digest("2023.1"))
    assert plan.status == TO_DELETE


def test_keep_zero_leaves_only_the_current_list_and_keep_many_deletes_nothing():
    registry = repo(tag("a", day=1), tag("b", day=2), tag("c", day=3))

    [none] = plan_prune([registry], current("c"), keep=0).repositories
    [all_] = plan_prune([registry], current("c"), keep=5).repositories

    assert names(none.deleted) == ["b", "a"]
    assert all_.deleted == () and all_.status == KEPT and all_.manifests == ()


def test_newest_is_by_the_images_created_time_not_the_tag():
    # A rebuilt older release is newer than its tag says.
    registry = repo(tag("2024.1", day=1), tag("2023.2", day=9), tag("current", day=10))

    [plan] = plan_prune([registry], current("current"), keep=1).repositories

    assert names(plan.kept) == ["current", "2023.2"]
    assert names(plan.deleted) == ["2024.1"]


def test_a_tag_without_a_creation_date_stays_and_counts_for_no_release():
    # A signature (cosign's sha256-HEX.sig) or an attestation has no created time: it cannot be called old.
    registry = repo(
        tag("2024.1", day=9), tag("2023.2", day=5), tag("2023.1", day=1), tag("sha256-abc.sig"), tag("2023.9")
    )

    [plan] = plan_prune([registry], current("2024.1"), keep=1).repositories

    assert [(k.tag.name, k.why) for k in plan.kept] == [
        ("2024.1", CURRENT), ("2023.2", NEWEST), ("2023.9", UNDATED), ("sha256-abc.sig", UNDATED),
    ]  # fmt: skip
    assert names(plan.deleted) == ["2023.1"] and plan.manifests == (digest("2023.1"),)


def test_the_highest_tag_breaks_a_tie_of_created_times():
    registry = repo(tag("2023.9", day=1), tag("2023.10", day=1), tag("2023.2", day=1))

    [plan] = plan_prune([registry], current("x"), keep=1).repositories

    assert names(plan.kept) == ["2023.10"] and names(plan.deleted) == ["2023.9", "2023.2"]


def test_a_digest_a_kept_tag_points_at_is_never_deleted():
    # DELETE by digest would remove 2024.1 as well.
    registry = repo(tag("2024.1", day=5), tag("2024.1-rc", "2024.1", day=5), tag("2023.1", day=1))

    [plan] = plan_prune([registry], current("2024.1"), keep=0).repositories

    assert [(k.tag.name, k.why, k.like) for k in plan.kept] == [
        ("2024.1", CURRENT, ""),
        ("2024.1-rc", SAME_IMAGE, "2024.1"),
    ]
    assert plan.manifests == (digest("2023.1"),)


def test_two_tags_of_one_older_image_count_as_one_image_and_stay_together():
    registry = repo(
        tag("cur", day=9), tag("2023.2", day=5), tag("2023.2-final", "2023.2", day=5), tag("2023.1", day=1)
    )

    [plan] = plan_prune([registry], current("cur"), keep=1).repositories

    assert sorted(names(plan.kept)) == ["2023.2", "2023.2-final", "cur"]
    assert names(plan.deleted) == ["2023.1"]


def test_two_deleted_tags_of_one_image_delete_its_manifest_once():
    registry = repo(tag("cur", day=9), tag("old", day=1), tag("old-too", "old", day=1))

    [plan] = plan_prune([registry], current("cur"), keep=0).repositories

    assert sorted(names(plan.deleted)) == ["old", "old-too"]
    assert plan.manifests == (digest("old"),)


def test_a_deleted_manifest_list_takes_its_platform_manifests_with_it():
    registry = repo(
        tag("cur", day=9, children=("cur-amd64", "cur-arm64")),
        tag("old", day=1, children=("old-amd64", "old-arm64")),
    )

    result = plan_prune([registry], current("cur"), keep=0)

    assert result.repositories[0].manifests == (digest("old"), digest("old-amd64"), digest("old-arm64"))
    # registry 2.8's --delete-untagged would delete cur's untagged platform manifests.
    assert not result.delete_untagged
    assert result.notes


def test_a_platform_manifest_a_kept_list_or_tag_uses_is_never_deleted():
    registry = repo(
        tag("cur", day=9, children=("shared-amd64", "cur-arm64")),
        tag("old", day=1, children=("shared-amd64", "old-arm64")),
        tag("old-amd64", "old-arm64-alone", day=2),
    )

    [plan] = plan_prune([registry], current("cur", "old-amd64"), keep=0).repositories

    assert plan.manifests == (digest("old"), digest("old-arm64"))


def test_a_tag_pointing_at_a_kept_lists_platform_manifest_stays():
    registry = repo(tag("cur", day=9, children=("cur-amd64",)), tag("cur-amd64", day=8))

    [plan] = plan_prune([registry], current("cur"), keep=0).repositories

    assert plan.deleted == () and plan.kept[1].why == SAME_IMAGE


def test_without_manifest_lists_untagged_manifests_are_collected_too():
    assert plan_prune([repo(tag("a", day=1), tag("b", day=2))], [], keep=1).delete_untagged


def test_a_repository_with_a_tag_it_could_not_read_deletes_nothing():
    broken = Tag(KEYSTONE, "2023.2", "", error="GET ...: HTTP 500")
    registry = repo(tag("cur", day=9), broken, tag("old", day=1))

    [plan] = plan_prune([registry], current("cur"), keep=0).repositories

    assert plan.deleted == () and plan.manifests == ()
    assert {k.why for k in plan.kept} == {UNREAD}
    assert plan.message == "nothing deleted: 2023.2: GET ...: HTTP 500"


def test_a_repository_that_did_not_list_its_tags_deletes_nothing():
    [plan] = plan_prune([Repository(KEYSTONE, (), "GET /v2/x/tags/list: HTTP 401")], current("x"), keep=0).repositories

    assert plan.status == KEPT and plan.message.endswith("HTTP 401")


def test_the_current_list_is_per_repository_and_the_probe_is_left_alone():
    keystone = repo(tag("2024.1", day=2), tag("2023.1", day=1))
    nova = repo(tag("2024.1", day=2, repository=NOVA), tag("2023.1", day=1, repository=NOVA), name=NOVA)
    probe = Repository(PROBE_REPOSITORY, (Tag(PROBE_REPOSITORY, "latest", digest("p")),))

    result = plan_prune([keystone, nova, probe], current("2024.1"), keep=0, every=True)

    assert [r.name for r in result.repositories] == [KEYSTONE, NOVA]
    assert names(result.repositories[0].deleted) == ["2023.1"]
    assert names(result.repositories[1].deleted) == ["2024.1", "2023.1"]  # not in the list for nova


def test_the_space_expected_back_counts_blobs_no_image_that_stays_uses():
    keystone = repo(
        tag("cur", day=9, blobs=(("base", 1000), ("cur-layer", 10))),
        tag("old", day=1, blobs=(("base", 1000), ("old-layer", 200), ("shared-elsewhere", 30))),
    )
    nova = repo(tag("cur", day=9, repository=NOVA, blobs=(("shared-elsewhere", 30),)), name=NOVA)

    result = plan_prune([keystone, nova], current("cur") + current("cur", path=NOVA), keep=0)

    assert result.freed == 200


def test_deletes_list_every_repository_and_manifest():
    keystone = repo(tag("cur", day=9), tag("old", day=1))
    nova = repo(tag("old", day=1, repository=NOVA), name=NOVA)

    assert plan_prune([keystone, nova], current("cur"), keep=0, every=True).deletes == [
        (KEYSTONE, digest("old")),
        (NOVA, digest("old")),
    ]


def test_after_deletes_a_failed_delete_keeps_its_tags_and_fails_its_repository():
    keystone = repo(tag("cur", day=9), tag("old", day=2), tag("older", day=1))
    nova = repo(tag("old", day=1, repository=NOVA), name=NOVA)
    plan = plan_prune([keystone, nova], current("cur"), keep=0, every=True)

    done = after_deletes(plan, {(KEYSTONE, digest("older")): "DELETE ...: HTTP 500"})

    first, second = done.repositories
    assert first.status == FAILED and names(first.deleted) == ["old"]
    assert first.message == "not deleted: older: DELETE ...: HTTP 500"
    assert second.status == DELETED
    assert done.deletes == [(KEYSTONE, digest("old")), (NOVA, digest("old"))]


@pytest.mark.parametrize(
    "text, expected",
    [
        ("2024-01-02T00:00:00Z", 1704153600.0),
        ("2024-01-02T00:00:00.123456789Z", 1704153600.123456789),
        ("2024-01-02T02:00:00+02:00", 1704153600.0),
        ("2024-01-02T02:00:00+0200", 1704153600.0),
        ("2024-01-02T00:00:00", 1704153600.0),
        ("", None),
        ("yesterday", None),
    ],
)
def test_created_times_are_read_whatever_their_precision_and_zone(text, expected):
    assert created_seconds(text) == (pytest.approx(expected) if expected else None)


def test_the_table_shows_per_repository_what_stays_and_goes():
    keystone = repo(
        tag("cur", day=9),
        tag("cur-b", "cur", day=9),
        tag("prev", day=5),
        tag("old", day=1, blobs=(("x", 2_500_000),)),
    )
    plan = plan_prune([keystone], current("cur"), keep=1)

    shown = table(plan, planned=True)

    assert shown.startswith("REGISTRY (nothing was deleted)\n")
    row = next(line for line in shown.splitlines() if line.startswith(KEYSTONE))
    assert row.startswith(f"{KEYSTONE}  cur (current), cur-b (same image as cur), prev  old ")
    assert row.endswith("to delete") and "(newest)" in shown
    assert shown.endswith(
        "prune-registry: 1 repositories: 1 tags to delete (1 manifests), about 2.5 MB to free"
    )
    done = after_deletes(plan, {})
    assert totals(done, (10_000_000, 7_000_000)) == (
        "1 repositories: 1 tags deleted (1 manifests); freed 3.0 MB (10.0 MB -> 7.0 MB)"
    )


# --- which repositories: the image list's, unless every one -----------------------------------------


OTHER_CLOUD, OPS = "othercloud/keystone", "ops/backup-agent"


def registry_of_three_owners() -> list[Repository]:
    """The list's keystone, another cloud's keystone, and the operator's own repository."""
    return [
        repo(tag("2024.1", day=9), tag("2023.2", day=5), tag("2023.1", day=1)),
        repo(tag("2023.1", day=1, repository=OTHER_CLOUD), tag("2023.2", day=5, repository=OTHER_CLOUD), name=OTHER_CLOUD),
        repo(tag("v1", day=1, repository=OPS), tag("v2", day=3, repository=OPS), name=OPS),
    ]


def test_only_the_image_list_s_repositories_are_pruned_the_others_are_left_alone():
    plan = plan_prune(registry_of_three_owners(), current("2024.1"), keep=1)

    assert [repo.name for repo in plan.repositories] == [KEYSTONE]
    assert plan.deletes == [(KEYSTONE, digest("2023.1"))]
    other, ops = plan.others
    assert (other.name, other.status, other.deleted, other.manifests) == (OTHER_CLOUD, LEFT_ALONE, (), ())
    assert {kept.why for kept in other.kept + ops.kept} == {OUTSIDE}
    assert sorted(names(ops.kept)) == ["v1", "v2"]
    # What --all-repositories would delete there, for --check to show.
    assert names(other.would) == ["2023.1"] and names(ops.would) == ["v1"]
    assert ops.message == "not in the image list; --all-repositories would delete v1"


def test_all_repositories_prunes_every_one_as_before():
    plan = plan_prune(registry_of_three_owners(), current("2024.1"), keep=1, every=True)

    assert plan.others == ()
    assert plan.deletes == [(KEYSTONE, digest("2023.1")), (OTHER_CLOUD, digest("2023.1")), (OPS, digest("v1"))]


def test_check_shows_the_repositories_left_alone_and_what_all_repositories_would_add():
    plan = plan_prune(registry_of_three_owners(), current("2024.1"), keep=1)

    shown = table(plan, planned=True)

    row = next(line for line in shown.splitlines() if line.startswith(OPS))
    assert "v2, v1" in row and "left alone" in row and "--all-repositories would delete v1" in row
    assert shown.endswith(
        "1 repositories: 1 tags to delete (1 manifests), about 0 B to free; "
        "2 repositories not in the image list left alone (--all-repositories would delete 2 tags there)"
    )


def test_what_other_repositories_hold_stays_in_use_for_the_collection():
    # The blob and the manifest list of a repository left alone are in use: registry-wide collection.
    keystone = repo(tag("cur", day=9), tag("old", day=1, blobs=(("shared", 500), ("own", 70))))
    ops = repo(tag("v1", day=1, repository=OPS, children=("v1-amd64",), blobs=(("shared", 500),)), name=OPS)

    plan = plan_prune([keystone, ops], current("cur"), keep=0)

    assert plan.freed == 70 and not plan.delete_untagged


# --- after the deletes: what the program saw just before deleting ------------------------------------


def test_a_manifest_a_tag_pushed_since_the_scan_uses_is_kept_and_so_is_its_tag():
    plan = plan_prune([repo(tag("cur", day=9), tag("old", day=2), tag("older", day=1))], current("cur"), keep=0)
    rechecked = Rechecked(
        kept={(KEYSTONE, digest("old")): "rollback"},
        current={KEYSTONE: {"cur": digest("cur"), "old": digest("old"), "older": digest("older"), "rollback": digest("old")}},
    )

    [done] = after_deletes(plan, {}, rechecked).repositories

    assert done.status == DELETED and names(done.deleted) == ["older"]
    assert done.manifests == (digest("older"),)
    assert [(k.tag.name, k.why, k.like) for k in done.kept][-1] == ("old", SINCE, "rollback")
    assert done.message == "kept, changed since the scan: old (rollback uses it)"
    assert kept_text(done.kept[-1]) == "old (changed since the scan: rollback uses it)"


def test_a_tag_that_names_another_image_since_the_scan_is_not_counted_as_deleted():
    plan = plan_prune([repo(tag("cur", day=9), tag("old", day=1))], current("cur"), keep=0)
    rechecked = Rechecked(current={KEYSTONE: {"cur": digest("cur"), "old": digest("new-push")}})

    [done] = after_deletes(plan, {}, rechecked).repositories

    # Its old manifest went (nothing else used it); the tag itself, re-pushed, stays.
    assert done.deleted == () and done.manifests == (digest("old"),)
    assert done.message == "kept, changed since the scan: old"



# --- kept releases: images.keep_releases and the locks prune is given --------------------------------


def test_a_kept_release_s_snapshot_tags_stay_whatever_keep_says_and_the_table_says_why():
    registry = repo(
        tag("t", day=9), tag("t-B", "t", day=9), tag("t-A", day=5), tag("t-Z", day=3), tag("old", day=1)
    )
    pins = pins_from(["A", "B"], [])

    [plan] = plan_prune([registry], current("t"), keep=0, pins=pins).repositories

    assert [(k.tag.name, k.why, k.like) for k in plan.kept] == [
        ("t", CURRENT, ""), ("t-B", PINNED, "release B"), ("t-A", PINNED, "release A")
    ]
    assert names(plan.deleted) == ["t-Z", "old"]
    shown = table(plan_prune([registry], current("t"), keep=0, pins=pins), planned=True)
    assert "t-B (release B), t-A (release A)" in shown
    assert "to delete: not in the image list, named by no kept release (images.keep_releases, --lock) and older " \
           "than the 0 newest other images of its repository (--keep 0)" in shown


def test_without_pins_keep_zero_deletes_both_releases():
    registry = repo(tag("t", day=9), tag("t-B", "t", day=9), tag("t-A", day=5))

    [plan] = plan_prune([registry], current("t"), keep=0).repositories

    # t-B is the current image under another tag (kept as such); A's image goes.
    assert names(plan.deleted) == ["t-A"]


def test_a_lock_keeps_its_snapshot_tags_and_the_tags_still_naming_its_digests():
    registry = repo(tag("t", day=9), tag("t-r1", "r1", day=5), tag("prev", "r1", day=5), tag("older", day=2))
    entry = LockEntry(Image(KEYSTONE, "t"), f"quay.io/{KEYSTONE}:t", digest("r1"), snapshot="t-r1")
    lock = Lock("quay.io", entries=(entry,), release="r1", path="/srv/locks/r1.lock.yaml")

    [plan] = plan_prune([registry], current("t"), keep=0, pins=pins_from([], [lock])).repositories

    kept = {k.tag.name: kept_text(k) for k in plan.kept}
    assert kept["t-r1"] == "t-r1 (release r1 (r1.lock.yaml))"
    assert kept["prev"] == "prev (locked by r1.lock.yaml)"
    assert names(plan.deleted) == ["older"]


def test_a_release_name_matches_only_whole_tag_suffixes():
    pins = pins_from(["r1"], [])

    assert pins.why(tag("2025.1-ubuntu-noble-r1")) == "release r1"
    assert pins.why(tag("2025.1-ubuntu-noble-xr1")) == ""
    assert pins.why(tag("r1")) == ""


def test_json_shows_each_tag_kept_with_why_and_each_tag_deleted():
    registry = repo(tag("t", day=9), tag("t-A", day=5), tag("old", day=1))

    found = tags_data(plan_prune([registry], current("t"), keep=0, pins=pins_from(["A"], [])))

    assert found == {"repositories": [{
        "name": KEYSTONE, "status": TO_DELETE, "deleted": ["old"],
        "kept": [{"tag": "t", "why": "current"}, {"tag": "t-A", "why": "release A"}],
    }]}
