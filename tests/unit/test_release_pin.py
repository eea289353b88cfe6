"""kolla-globals --release: the pin that puts every Kolla image at its snapshot tag, checked before it is written."""

from __future__ import annotations

import pytest
import yaml

from fabfile.actions.kolla import KollaGlobals
from fabfile.images.model import Image
from fabfile.kolla import release_pin as rp
from fabfile.kolla.pin_plan import pin_planner
from fabfile.model.facts import HostFacts

from .factories import host_facts, make_ctx, request_of

GLOBALS = "/etc/kolla/globals.yml"
PIN = "/etc/kolla/globals.d/zz-kolla-registry-release.yml"
TAG = "2025.1-ubuntu-noble"
IMAGES = [Image("openstack.kolla/keystone", TAG), Image("openstack.kolla/nova-compute", "custom")]


def files(globals_yml: str = "---\nnetwork_interface: eth0\n", **more: str) -> list[tuple[str, str]]:
    found = {GLOBALS: globals_yml, **{f"/etc/kolla/globals.d/{name}": text for name, text in more.items()}}
    return rp.globals_files(found, GLOBALS)


def test_by_default_the_suffix_pins_every_service_that_keeps_kolla_s_tag():
    assert rp.pin_values("r3", files()) == {"kolla_registry_release": "r3", "openstack_tag_suffix": "-r3"}


def test_the_operator_s_own_suffix_comes_first():
    values = rp.pin_values("r3", files("openstack_tag_suffix: -aarch64\n"))

    assert values["openstack_tag_suffix"] == "-aarch64-r3"


def test_an_openstack_tag_the_operator_set_is_pinned_itself_the_suffix_would_not_reach_it():
    values = rp.pin_values("r3", files(f"openstack_tag: {TAG}-custom\nopenstack_tag_suffix: -x\n"))

    assert values == {"kolla_registry_release": "r3", "openstack_tag": f"{TAG}-custom-r3"}


def test_a_per_service_tag_override_keeps_its_own_tag_pinned_and_one_that_inherits_is_left_to_inherit():
    text = "nova_compute_tag: custom\nnova_tag: '{{ openstack_tag }}'\noctavia_amp_image_tag: amphora\n"

    values = rp.pin_values("r3", files(text, **{"50-site.yml": "glance_tag: g1\n"}))

    assert values == {
        "kolla_registry_release": "r3", "openstack_tag_suffix": "-r3", "nova_compute_tag": "custom-r3", "glance_tag": "g1-r3",
    }


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("nova_compute_tag: '{{ openstack_tag }}-fix'\n", "nova_compute_tag: a template ({{ openstack_tag }}-fix) cannot be pinned"),
        ("nova_tag: 2025.1\n", "nova_tag: 2025.1 was read as a number: quote it"),
        ("openstack_tag_suffix: '{{ arch }}'\n", "openstack_tag_suffix: a template"),
        ("nova_tag: 'a b'\n", "nova_tag: 'a b' is not an image tag"),
        ("- a list\n", "not a mapping of variables"),
    ],
)
def test_what_cannot_be_pinned_is_named_with_its_file_and_key(text, problem):
    with pytest.raises(rp.PinError) as caught:
        rp.pin_values("r3", files(text))

    assert str(caught.value).startswith(f"{GLOBALS}: ") and problem in str(caught.value)


def test_a_globals_d_file_read_after_the_pin_that_sets_a_tag_is_found():
    found = files(**{"zzz-late.yml": "nova_tag: late\n", "zzz-other.yml": "enable_heat: no\n", "a.yml": "nova_tag: early\n"})

    assert rp.later_files(found) == ["/etc/kolla/globals.d/zzz-late.yml"]


def test_the_pin_file_says_its_release_and_reads_back():
    text = rp.render_pin(rp.pin_values("r3", files("nova_compute_tag: custom\n")))

    assert text.startswith("---\n# kolla-registry: every Kolla image pinned to release r3")
    assert yaml.safe_load(text) == {
        "kolla_registry_release": "r3", "nova_compute_tag": "custom-r3", "openstack_tag_suffix": "-r3"
    }
    assert rp.pinned_release(text) == "r3" and rp.pinned_release(None) == "" and rp.pinned_release("a: [") == ""


def facts_with(pin: str | None = None, held=(200, 200), globals_yml: str = "---\nnova_compute_tag: custom\n") -> HostFacts:
    found = {GLOBALS: globals_yml, **({PIN: pin} if pin is not None else {})}
    answers = {"snapshots": {"manifests": [{"status": status, "digest": "sha256:" + "a" * 64} for status in held]}}
    return host_facts(files=found, answers=answers)


def plan(release: str, facts: HostFacts):
    return pin_planner(GLOBALS, release, IMAGES)(facts, make_ctx())


def test_a_release_the_registry_holds_whole_is_pinned():
    found = plan("r3", facts_with())

    [change] = found.files
    assert (change.path, change.before, found.error) == (PIN, None, None)
    assert rp.pinned_release(change.after) == "r3" and "nova_compute_tag: \"custom-r3\"" in change.after
    assert found.notes == ["pinned to release r3"]


def test_a_release_the_registry_lacks_images_of_is_refused_naming_them_and_the_pin_stays():
    before = rp.render_pin(rp.pin_values("r2", files("---\nnova_compute_tag: custom\n")))

    found = plan("r3", facts_with(pin=before, held=(200, 404)))

    assert found.files == []
    assert found.error == (
        "release r3: 1 of 2 images are not in the registry at their snapshot tags (openstack.kolla/nova-compute:custom-r3): "
        "run fab sync-images --release r3 first; the pin is left as it was"
    )


def test_rolling_back_rewrites_only_the_pin_and_says_from_what():
    pinned_b = rp.render_pin(rp.pin_values("B", files("---\nnova_compute_tag: custom\n")))

    found = plan("A", facts_with(pin=pinned_b))

    [change] = found.files
    assert change.before == pinned_b and rp.pinned_release(change.after) == "A"
    assert found.notes == ["release B -> A"]
    again = plan("A", facts_with(pin=change.after))
    assert again.files == [] and again.notes == ["pinned to release A"]


def test_none_removes_the_pin():
    pinned = rp.render_pin(rp.pin_values("B", files()))

    assert [(c.path, c.after) for c in plan("none", facts_with(pin=pinned)).files] == [(PIN, None)]
    assert plan("none", facts_with()).notes == ["no release pinned"]


def test_kolla_globals_asks_the_registry_for_every_image_at_its_snapshot_tag_and_reads_globals_d():
    action = KollaGlobals(GLOBALS, "openstack.kolla", "r3", IMAGES)
    ctx = make_ctx()

    read, asked = action.sections(ctx)

    assert request_of(asked.shell)["manifests"] == [
        ["http://192.0.2.10:4000", "openstack.kolla/keystone", f"{TAG}-r3"],
        ["http://192.0.2.10:4000", "openstack.kolla/nova-compute", "custom-r3"],
    ]
    assert "/etc/kolla/globals.d/*.yml" in read.shell and PIN in read.shell
    assert [step.planner.__name__ for step in action.steps(ctx)] == ["plan_globals", "plan_pin"]
    assert len(KollaGlobals(GLOBALS, "openstack.kolla").steps(ctx)) == 1
