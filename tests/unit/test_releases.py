"""Which release each host's images come from, and a pinned cloud's images at their snapshot tags."""

from __future__ import annotations

from fabfile.actions.status import Status
from fabfile.images.model import Image
from fabfile.images.releases import held_releases
from fabfile.images.wanted import at_release, every_host_wants, per_host
from fabfile.kolla.release_pin import pin_path, pin_values, render_pin
from fabfile.registry import status as st

from .factories import REGISTRY, docker_host, make_inventory

KEYSTONE = Image("openstack.kolla/keystone", "T")
NOVA = Image("openstack.kolla/nova-compute", "T")
ARM = Image("openstack.kolla/nova-compute", "T-aarch64")
D = "sha256:" + "d" * 64


def held(*refs: str) -> dict[str, list[str]]:
    return {f"{REGISTRY}/{ref}": [D] for ref in refs}


def test_a_host_s_releases_are_the_snapshot_tags_of_its_images_it_holds_the_pinned_one_first():
    found = held("openstack.kolla/keystone:T-A", "openstack.kolla/nova-compute:T-A", "openstack.kolla/keystone:T-B",
                 "openstack.kolla/nova-compute:T-B", "openstack.kolla/keystone:T", "other/x:T-A")

    assert held_releases([KEYSTONE, NOVA], found, REGISTRY) == "A 2/2, B 2/2"
    assert held_releases([KEYSTONE, NOVA], found, REGISTRY, pinned="B") == "B 2/2 (pinned), A 2/2"
    assert held_releases([KEYSTONE, NOVA], held("openstack.kolla/keystone:T"), REGISTRY, pinned="B") == "B 0/2 (pinned)"
    assert held_releases([KEYSTONE, NOVA], held("openstack.kolla/keystone:T"), REGISTRY) == ""


def test_another_image_of_the_list_is_not_taken_for_a_release():
    found = held("openstack.kolla/nova-compute:T", "openstack.kolla/nova-compute:T-aarch64")

    assert held_releases([NOVA, ARM], found, REGISTRY) == ""


def test_a_release_puts_every_image_of_every_host_at_its_snapshot_tag():
    listed = at_release(every_host_wants([KEYSTONE, NOVA]), "B")
    own = at_release(per_host({"ctl1": (KEYSTONE,), "cmp1": (NOVA,)}, {"10.0.0.2": "cmp1"}, "kolla-ansible 23.0.0"), "B")

    assert listed.images == (Image(KEYSTONE.path, "T-B"), Image(NOVA.path, "T-B"))
    assert own.by_host["cmp1"] == own.by_host["10.0.0.2"] == (Image(NOVA.path, "T-B"),)
    assert own.needed_by[Image(KEYSTONE.path, "T-B")] == ("ctl1",)
    assert own.source == "kolla-ansible 23.0.0 at release B"
    assert at_release(listed, "") is listed


def test_status_shows_each_host_s_releases_with_the_cloud_s_pin_read_on_the_deployment_host():
    inventory = make_inventory()
    globals_path = "/etc/kolla/globals.yml"
    action = Status(inventory, globals_path, lambda: "192.0.2.10", every_host_wants([KEYSTONE, NOVA]))
    pin = render_pin(pin_values("A", [(globals_path, "---\n")]))
    action.facts_of = {
        "deploy1": docker_host(files={pin_path(globals_path): pin}),
        "node1": docker_host(docker_images=held("openstack.kolla/keystone:T-A", "openstack.kolla/nova-compute:T-A",
                                                "openstack.kolla/keystone:T-B", "openstack.kolla/nova-compute:T-B")),
        "node2": docker_host(docker_images=held("openstack.kolla/keystone:T-B")),
    }

    releases = action.releases(REGISTRY)

    assert releases == {"deploy1": "A 0/2 (pinned)", "node1": "A 2/2 (pinned), B 2/2", "node2": "A 0/2 (pinned), B 1/2"}
    rows = [st.HostStatus(host, st.TARGET, "192.0.2.11", True, release=releases[host]) for host in releases]
    table = st.status_table(rows, REGISTRY)
    assert table.splitlines()[1].split()[-1] == "release" and "A 2/2 (pinned), B 2/2" in table
