"""kolla-globals' release pin against kolla-ansible itself: with the pin in globals.d, every service of every
host resolves to its image at ``TAG-RELEASE`` (its own tag, override or not, then the release), as the set
computed without the pin names it; and kolla-ansible's real `pull` pulls exactly those."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections import defaultdict
from pathlib import Path

import pytest

from fabfile.kolla.imageset import kolla_images
from fabfile.kolla.release_pin import PIN_NAME, globals_files, pin_values, render_pin
from tests.conftest import unavailable
from tests.kolla_env import KollaEnvUnavailable, kolla_venv

from .test_kolla_imageset import HOSTS, KollaLab, refs

RELEASE = "2026.2-r3"


@pytest.fixture(scope="module")
def kolla(tmp_path_factory: pytest.TempPathFactory) -> KollaLab:
    """The pinned kolla-ansible and the image set module's scenarios, here for the pin."""
    try:
        venv = kolla_venv()
    except KollaEnvUnavailable as error:
        unavailable(str(error))
    return KollaLab(venv, tmp_path_factory.mktemp("kolla-pin"))


def pinned_config(kolla: KollaLab, scenario: str, extra: dict[str, str] | None = None) -> Path:
    """A copy of the scenario's config dir with the pin kolla-globals would write (and ``extra`` globals.d files)."""
    _, config = kolla.scenario(scenario)
    folder = kolla.root / f"{scenario}-pinned"
    if folder.exists():
        shutil.rmtree(folder)
    shutil.copytree(config, folder)
    (folder / "globals.d").mkdir(exist_ok=True)
    for name, text in (extra or {}).items():
        (folder / "globals.d" / name).write_text(text)
    found = {str(path): path.read_text() for path in [folder / "globals.yml", *(folder / "globals.d").glob("*")]}
    values = pin_values(RELEASE, globals_files(found, str(folder / "globals.yml")))
    (folder / "globals.d" / PIN_NAME).write_text(render_pin(values))
    return folder


def at_release(ref: str) -> str:
    return f"{ref}-{RELEASE}"


@pytest.mark.parametrize(
    ("scenario", "extra"),
    [
        ("changed", {"50-site.yml": "glance_tag: 2026.2-glance\n"}),  # per-service overrides, in globals.yml and globals.d
        ("podman", {}),  # the operator's own openstack_tag_suffix (-aarch64)
    ],
)
def test_with_the_pin_every_service_resolves_to_its_snapshot_tag(kolla: KollaLab, scenario, extra) -> None:
    inventory, _ = kolla.scenario(scenario)
    facts = {host: kolla.local_facts for host in HOSTS}
    config = pinned_config(kolla, scenario, extra)
    unpinned_config = kolla.root / f"{scenario}-unpinned"
    shutil.copytree(config, unpinned_config, dirs_exist_ok=True)
    (unpinned_config / "globals.d" / PIN_NAME).unlink()

    unpinned = kolla_images([str(inventory)], str(unpinned_config), str(kolla.venv), facts=facts)
    pinned = kolla_images([str(inventory)], str(config), str(kolla.venv), facts=facts, skip=())
    # What this tool computes by default leaves its own pin out: the upstream's names.
    default = kolla_images([str(inventory)], str(config), str(kolla.venv), facts=facts)

    for host in sorted(HOSTS):
        assert refs(pinned, host) == {at_release(ref) for ref in refs(unpinned, host)}, host
        assert refs(default, host) == refs(unpinned, host), host
    overridden = {ref for host in HOSTS for ref in refs(pinned, host) if "glance" in ref or "nova-compute" in ref}
    assert overridden and all(ref.endswith(f"-{RELEASE}") for ref in overridden)


def test_kolla_ansible_s_own_pull_pulls_every_image_at_its_snapshot_tag(kolla: KollaLab) -> None:
    inventory, _ = kolla.scenario("changed")
    config = pinned_config(kolla, "changed")
    unpinned = kolla.computed("changed")
    pulls = inventory.parent / "pulls.jsonl"
    seen = len(pulls.read_text().splitlines()) if pulls.exists() else 0

    done = subprocess.run(
        [kolla.venv / "bin" / "kolla-ansible", "pull", "-i", inventory, "--configdir", config,
         "-p", kolla.playbooks / "site.yml"],
        env={**os.environ, "PATH": f"{kolla.venv / 'bin'}:{os.environ['PATH']}",
             "ANSIBLE_FORKS": str(len(HOSTS)), "ANSIBLE_PIPELINING": "1"},
        capture_output=True, text=True, timeout=900, check=False,
    )  # fmt: skip

    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    recorded = defaultdict(set)
    for pull in map(json.loads, pulls.read_text().splitlines()[seen:]):
        recorded[pull["host"]].add(pull["image"])
    for host in sorted(HOSTS):
        assert recorded.get(host, set()) == {at_release(ref) for ref in refs(unpinned, host)}, host
