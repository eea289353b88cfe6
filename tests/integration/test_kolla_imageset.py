"""The kolla image set against kolla-ansible itself.

For each scenario, kolla-ansible's real `pull` (its CLI and site.yml, from the pinned PyPI
release) runs on every inventory host over a local connection, with its kolla_container module
replaced by a recorder; what it recorded per host must be exactly what the payload computed.
"""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import subprocess
import time
from collections import defaultdict
from pathlib import Path

import pytest
import yaml

from fabfile.kolla.imageset import KollaImagesError, KollaImageSet, kolla_images
from tests import kolla_env
from tests.conftest import unavailable
from tests.kolla_env import KollaEnvUnavailable, kolla_venv

# The sample multinode inventory's host groups, with our hosts; ctl1 is also the network host.
HOST_GROUPS = {
    "control": ["ctl1", "ctl2"],
    "network": ["ctl1"],
    "compute": ["cmp1", "cmp2"],
    "monitoring": ["mon1"],
    "storage": ["sto1"],
    "deployment": [],
}
HOSTS = {"ctl1", "ctl2", "cmp1", "cmp2", "mon1", "sto1"}
TAG = "2026.2-rocky-10"
# globals.yml for each scenario (on top of kolla-ansible's example), and its inventory's format.
SCENARIOS = {
    "default": ("ini", {}),
    "changed": (
        "ini",
        {"enable_cinder": True, "enable_cinder_backend_lvm": True, "enable_heat": False,
         "nova_compute_tag": "2026.2-custom"},
    ),
    "podman": (
        "yaml",
        {"kolla_container_engine": "podman", "openstack_tag_suffix": "-aarch64",
         "docker_registry": "registry.lab:4000", "docker_namespace": "kolla"},
    ),
}
# Stands in for kolla-ansible's kolla_container (WANT_JSON: Ansible hands it the JSON args file).
RECORDER = '''#!/usr/bin/python
# WANT_JSON
import json, os, sys
args = json.load(open(sys.argv[1]))
if args.get("action") == "pull_image":
    # Each host's remote_tmp is RUN/hosts/HOST: which host this runs for, and where to record.
    tmp = args["_ansible_remote_tmp"].rstrip("/")
    with open(os.path.join(os.path.dirname(os.path.dirname(tmp)), "pulls.jsonl"), "a") as out:
        out.write(json.dumps({"host": os.path.basename(tmp), "image": args["image"]}) + "\\n")
print(json.dumps({"changed": False}))
'''


class KollaLab:
    """The pinned kolla-ansible, each scenario's files, and each result computed or recorded once."""

    def __init__(self, venv: Path, root: Path) -> None:
        self.venv, self.root = venv, root
        self.share = venv / "share" / "kolla-ansible" / "ansible"
        self.playbooks = self.playbooks_with_recorder()
        self._computed: dict[str, KollaImageSet] = {}
        self._recorded: dict[str, dict[str, set[str]]] = {}

    def playbooks_with_recorder(self) -> Path:
        """kolla-ansible's playbook directory, linked entry by entry, but library/kolla_container.py is
        the recorder (a playbook's library/ comes before ANSIBLE_LIBRARY, so only this replaces it)."""
        mirror = self.root / "playbooks"
        (mirror / "library").mkdir(parents=True)
        for entry in self.share.iterdir():
            if entry.name != "library":
                (mirror / entry.name).symlink_to(entry)
        for module in (self.share / "library").glob("*.py"):
            if module.name != "kolla_container.py":
                (mirror / "library" / module.name).symlink_to(module)
        (mirror / "library" / "kolla_container.py").write_text(RECORDER)
        return mirror

    def scenario(self, name: str) -> tuple[Path, Path]:
        """The scenario's inventory and config dir (globals.yml, and passwords.yml from kolla-genpwd)."""
        run = self.root / name
        if run.exists():
            return run / "inventory", run / "config"
        form, settings = SCENARIOS[name]
        (run / "config").mkdir(parents=True)
        example = (self.share.parent / "etc_examples" / "kolla").resolve()
        settings_yml = yaml.safe_dump(settings) if settings else ""  # the example's own settings, then these
        (run / "config" / "globals.yml").write_text((example / "globals.yml").read_text() + settings_yml)
        shutil.copy(example / "passwords.yml", run / "config" / "passwords.yml")
        subprocess.run([self.venv / "bin" / "kolla-genpwd", "-p", run / "config" / "passwords.yml"],
                       check=True, capture_output=True)
        host_vars = {host: {"ansible_connection": "local", "ansible_python_interpreter": str(self.venv / "bin" / "python"),
                            "ansible_remote_tmp": str(run / "hosts" / host)} for host in HOSTS}
        text = ini_inventory(self.share, host_vars) if form == "ini" else yaml_inventory(self.share, host_vars)
        (run / "inventory").write_text(text)
        return run / "inventory", run / "config"

    def computed(self, name: str) -> KollaImageSet:
        if name not in self._computed:
            inventory, config = self.scenario(name)
            facts = {host: self.local_facts for host in HOSTS}  # the oracle's hosts are all this machine
            started = time.monotonic()
            self._computed[name] = kolla_images([str(inventory)], str(config), kolla_ansible=str(self.venv), facts=facts)
            print(f"payload {name}: {time.monotonic() - started:.1f} s")
        return self._computed[name]

    @functools.cached_property
    def local_facts(self) -> dict[str, str]:
        """This machine's os_family, as Ansible's setup module finds it (kolla-ansible places tgtd by it)."""
        done = subprocess.run(
            [self.venv / "bin" / "ansible", "localhost", "-c", "local", "-m", "ansible.builtin.setup",
             # The minimal subset holds the distribution: no network or hardware facts, whose reads of
             # every interface can wait long on a busy host.
             "-a", "gather_subset=!all filter=ansible_os_family",
             "-e", f"ansible_python_interpreter={self.venv / 'bin' / 'python'}"],
            env={**os.environ, "ANSIBLE_LOAD_CALLBACK_PLUGINS": "1", "ANSIBLE_STDOUT_CALLBACK": "ansible.posix.json"},
            capture_output=True, text=True, timeout=120, check=True,
        )
        facts = json.loads(done.stdout)["plays"][0]["tasks"][0]["hosts"]["localhost"]["ansible_facts"]
        return {"os_family": facts["ansible_os_family"]}

    def recorded(self, name: str) -> dict[str, set[str]]:
        """What kolla-ansible's own `pull` pulled on each host (a host that pulled nothing is absent)."""
        if name not in self._recorded:
            inventory, config = self.scenario(name)
            started = time.monotonic()
            done = subprocess.run(
                [self.venv / "bin" / "kolla-ansible", "pull", "-i", inventory, "--configdir", config,
                 "-p", self.playbooks / "site.yml"],
                # one fork per host and pipelining: a third faster, and no bearing on what is pulled
                env={**os.environ, "PATH": f"{self.venv / 'bin'}:{os.environ['PATH']}",
                     "ANSIBLE_FORKS": str(len(HOSTS)), "ANSIBLE_PIPELINING": "1"},
                capture_output=True, text=True, timeout=900, check=False,
            )
            print(f"kolla-ansible pull {name}: {time.monotonic() - started:.1f} s")
            assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
            pulls = defaultdict(set)
            for pull in map(json.loads, (inventory.parent / "pulls.jsonl").read_text().splitlines()):
                pulls[pull["host"]].add(pull["image"])
            self._recorded[name] = dict(pulls)
        return self._recorded[name]


def sample_children(share: Path) -> str:
    """The sample multinode inventory's ``[GROUP:children]`` sections, as they are."""
    return kolla_env.sample_children(share.parents[2])


def ini_inventory(share: Path, host_vars: dict[str, dict[str, str]]) -> str:
    sections = []
    for group, hosts in HOST_GROUPS.items():
        lines = [f"{host} " + " ".join(f"{k}={v}" for k, v in host_vars[host].items()) for host in hosts]
        sections.append("\n".join([f"[{group}]", *lines]))
    return "\n\n".join(sections) + "\n\n" + sample_children(share)


def yaml_inventory(share: Path, host_vars: dict[str, dict[str, str]]) -> str:
    """The same inventory in Ansible's YAML form: groups with hosts, then the sample's children."""
    groups: dict[str, dict] = {group: {"hosts": {h: host_vars[h] for h in hosts}} for group, hosts in HOST_GROUPS.items()}
    parent = None
    for line in sample_children(share).splitlines():
        line = line.split("#")[0].strip()
        if header := re.fullmatch(r"\[(.+):children\]", line):
            parent = groups.setdefault(header[1], {}).setdefault("children", {})
        elif line:
            parent[line] = {}
    return yaml.safe_dump({"all": {"children": groups}})


@pytest.fixture(scope="session")
def kolla(tmp_path_factory: pytest.TempPathFactory) -> KollaLab:
    try:
        venv = kolla_venv()
    except KollaEnvUnavailable as error:
        unavailable(str(error))
    return KollaLab(venv, tmp_path_factory.mktemp("kolla"))


def names(refs: set[str]) -> set[str]:
    """Image names without registry, namespace or tag: nova-compute."""
    return {ref.rsplit("/", 1)[-1].split(":")[0] for ref in refs}


def refs(image_set: KollaImageSet, host: str) -> set[str]:
    return {pulled.ref for pulled in image_set.hosts[host]}


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_kolla_ansible_pull_pulls_exactly_what_was_computed(kolla: KollaLab, scenario: str) -> None:
    computed, recorded = kolla.computed(scenario), kolla.recorded(scenario)
    assert set(computed.hosts) == HOSTS
    assert set(recorded) <= HOSTS
    for host in sorted(HOSTS):
        assert refs(computed, host) == recorded.get(host, set()), host
    assert computed.kolla_ansible == "23.0.0"


def test_default_services_land_on_their_groups_and_a_host_in_two_groups_gets_both(kolla: KollaLab) -> None:
    default = kolla.computed("default")
    every = {ref for host in HOSTS for ref in refs(default, host)}
    assert all(re.fullmatch(rf"quay\.io/openstack\.kolla/[a-z0-9-]+:{TAG}", ref) for ref in every)
    assert names(refs(default, "mon1")) == names(refs(default, "sto1")) == {"cron", "fluentd", "kolla-toolbox"}
    control, network = {"nova-api", "keystone-api", "mariadb-server", "heat-engine"}, {"neutron-l3-agent"}
    assert control | network <= names(refs(default, "ctl1"))  # control and network
    assert control <= names(refs(default, "ctl2")) and not network & names(refs(default, "ctl2"))
    assert {"nova-compute", "nova-libvirt"} <= names(refs(default, "cmp1")) and "nova-api" not in names(refs(default, "cmp1"))
    assert not any(name.startswith("cinder") for name in names(every))


def changes(kolla: KollaLab, host: str) -> tuple[set[str], set[str]]:
    """The image names ``changed`` adds on a host, and those it removes, compared with ``default``."""
    before, after = refs(kolla.computed("default"), host), refs(kolla.computed("changed"), host)
    return names(after - before), names(before - after)


def test_enabling_cinder_adds_its_images_to_control_and_storage_hosts_only(kolla: KollaLab) -> None:
    assert changes(kolla, "sto1")[0] == {"cinder-volume", "cinder-backup", "iscsid", "tgtd"}
    for host in ("ctl1", "ctl2"):
        assert {"cinder-api", "cinder-scheduler"} == changes(kolla, host)[0]
    for host in ("cmp1", "cmp2"):  # iscsid serves the compute hosts' volumes too
        assert changes(kolla, host)[0] == {"iscsid", "nova-compute"}
    assert changes(kolla, "mon1") == (set(), set())


def test_turning_heat_off_removes_exactly_its_images(kolla: KollaLab) -> None:
    for host in ("ctl1", "ctl2"):
        assert changes(kolla, host)[1] == {"heat-api", "heat-api-cfn", "heat-engine"}


def test_a_tag_override_changes_that_service_tag_only(kolla: KollaLab) -> None:
    changed = kolla.computed("changed")
    retagged = {host: {p.image.name for p in changed.hosts[host] if p.image.tag != TAG} for host in HOSTS}
    assert retagged == {
        host: {"openstack.kolla/nova-compute:2026.2-custom"} if host.startswith("cmp") else set() for host in HOSTS
    }


def test_podman_pulls_the_same_services_from_the_configured_registry_with_the_tag_suffix(kolla: KollaLab) -> None:
    podman, default = kolla.computed("podman"), kolla.computed("default")
    assert (podman.registry, podman.namespace) == ("registry.lab:4000", "kolla")
    for host in HOSTS:
        assert names(refs(podman, host)) == names(refs(default, host))
        for pulled in podman.hosts[host]:
            assert pulled.registry == "registry.lab:4000"
            assert pulled.image.path.startswith("kolla/") and pulled.image.tag == f"{TAG}-aarch64"


def test_facts_decide_where_tgtd_runs_and_their_absence_is_one_line(kolla: KollaLab) -> None:
    inventory, config = kolla.scenario("changed")
    redhat = kolla_images([str(inventory)], str(config), str(kolla.venv), facts={h: {"os_family": "RedHat"} for h in HOSTS})
    assert "cinder-volume" in names(refs(redhat, "sto1")) and "tgtd" not in names(refs(redhat, "sto1"))
    with pytest.raises(KollaImagesError, match=r"^host \w+: role \S+: .*os_family.* \(this host has no facts"):
        kolla_images([str(inventory)], str(config), str(kolla.venv))


def test_globals_d_files_come_after_globals_yml_by_name(kolla: KollaLab) -> None:
    inventory, config = kolla.scenario("default")
    shutil.copytree(config, kolla.root / "layered")
    (kolla.root / "layered" / "globals.d").mkdir()
    for name, text in {"b.yml": "openstack_tag_suffix: -b\n", "a.yml": "openstack_tag_suffix: -a\nnova_ssh_tag: a\n",
                       "c.txt": "openstack_tag_suffix: -c\n"}.items():  # c.txt: not a vars file to the CLI
        (kolla.root / "layered" / "globals.d" / name).write_text(text)
    layered = kolla_images([str(inventory)], str(kolla.root / "layered"), str(kolla.venv))
    assert {pulled.image.tag for host in HOSTS for pulled in layered.hosts[host]} == {f"{TAG}-b", "a"}


@pytest.mark.parametrize(
    ("globals_yml", "expected"),
    [
        (None, r"^/\S+/globals\.yml: not found$"),
        ("a: 1\nb: [1,\nc: 3\n", r"^/\S+/globals\.yml: not valid YAML \(line \d+\)$"),
        ("- a list\n", r"^/\S+/globals\.yml: not a mapping of variables"),
        ("nova_compute_image_full: '{{ no_such_var }}'\n", r"^host cmp1: service nova-compute: image undefined: .*no_such_var"),
    ],
)
def test_what_is_wrong_is_one_line(kolla: KollaLab, tmp_path: Path, globals_yml: str | None, expected: str) -> None:
    inventory, _ = kolla.scenario("default")
    if globals_yml is not None:
        (tmp_path / "globals.yml").write_text(globals_yml)
    with pytest.raises(KollaImagesError, match=expected) as raised:
        kolla_images([str(inventory)], str(tmp_path), str(kolla.venv))
    assert "\n" not in str(raised.value)


def test_a_missing_or_unparsable_inventory_is_named(kolla: KollaLab, tmp_path: Path) -> None:
    _, config = kolla.scenario("default")
    with pytest.raises(KollaImagesError, match=rf"^inventory {tmp_path}/multinode: not found$"):
        kolla_images([str(tmp_path / "multinode")], str(config), str(kolla.venv))
    (tmp_path / "broken").write_text("[control\nctl1\n")
    with pytest.raises(KollaImagesError, match=rf"^inventory {tmp_path}/broken: "):
        kolla_images([str(tmp_path / "broken")], str(config), str(kolla.venv))
