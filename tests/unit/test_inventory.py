"""inventory: hosts.yaml in, an Inventory (or one line naming file and key) out."""

from __future__ import annotations

from pathlib import Path

import pytest

from fabfile import inventory as inv
from fabfile.model.inventory import DockerSettings, Host, Inventory, InventoryError, RegistrySettings

# The project's own hosts.yaml, found from here (not from the code under test).
PROJECT_HOSTS = Path(__file__).resolve().parents[2] / "hosts.yaml"

FULL = """\
defaults:
  user: ubuntu
  port: 2222
  key: ~/.ssh/kolla_ed25519
deploy_host:
  name: deploy1
  address: 192.0.2.10
  user: root
targets:
  - name: node1
    address: 192.0.2.11
  - name: node2
    address: 192.0.2.12
    port: 22
    known_hosts: ~/.ssh/known_hosts_lab
registry:
  port: 5000
  address: registry.lab.example
  image: registry:2.8
  volume: kolla-images
  image_archive: images/registry-2.tar
  network: host
docker:
  source: get-docker
  config_method: docker-opts
  prerequisites: [curl, gcc]
  apt_cache_valid_time: 0
"""

MINIMAL = """\
deploy_host:
  name: deploy1
  address: 192.0.2.10
"""


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    """A known $HOME, so ``~`` expands to something the test can predict."""
    path = tmp_path / "home" / "operator"
    monkeypatch.setenv("HOME", str(path))
    return path


def write(folder: Path, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "hosts.yaml"
    path.write_text(text)
    return path


def test_full_file_defaults_apply_to_every_host_and_hosts_override_them(tmp_path, home):
    result = inv.load(write(tmp_path / "site", FULL))

    deploy, node1, node2 = result.deploy_host, *result.targets
    assert deploy == Host("deploy1", "192.0.2.10", user="root", port=2222, key=f"{home}/.ssh/kolla_ed25519")
    assert node1 == Host("node1", "192.0.2.11", user="ubuntu", port=2222, key=f"{home}/.ssh/kolla_ed25519")
    assert node2 == Host(
        "node2",
        "192.0.2.12",
        user="ubuntu",
        port=22,
        key=f"{home}/.ssh/kolla_ed25519",
        known_hosts=f"{home}/.ssh/known_hosts_lab",
    )


def test_full_file_registry_and_docker_settings(tmp_path, home):
    path = write(tmp_path / "site", FULL)
    result = inv.load(path)

    assert result.path == path
    assert result.registry == RegistrySettings(
        port=5000,
        address="registry.lab.example",
        image="registry:2.8",
        volume="kolla-images",
        image_archive=str(tmp_path / "site" / "images" / "registry-2.tar"),
        network="host",
    )
    assert result.docker == DockerSettings(
        source="get-docker",
        config_method="docker-opts",
        prerequisites=("curl", "gcc"),
        apt_cache_valid_time=0,
    )


def test_minimal_file_gets_every_default(tmp_path):
    result = inv.load(write(tmp_path, MINIMAL))

    assert result.deploy_host == Host(
        "deploy1", "192.0.2.10", user="root", port=22, key=None, known_hosts=None
    )
    assert result.targets == ()
    assert result.registry == RegistrySettings()
    assert result.registry.port == 4000 and result.registry.image == "registry:2"
    assert result.docker == DockerSettings()


@pytest.mark.parametrize(
    "archive, expected",
    [
        ("registry-2.tar", "{site}/registry-2.tar"),
        ("../shared/registry-2.tar", "{site}/../shared/registry-2.tar"),
        ("/srv/images/registry-2.tar", "/srv/images/registry-2.tar"),
        ("~/images/registry-2.tar", "{home}/images/registry-2.tar"),
    ],
)
def test_image_archive_is_resolved_against_the_files_folder(tmp_path, home, archive, expected):
    site = tmp_path / "site"
    result = inv.load(write(site, MINIMAL + f"registry:\n  image_archive: {archive}\n"))

    assert result.registry.image_archive == expected.format(site=site, home=home)


def test_the_projects_example_hosts_yaml_is_valid():
    result = inv.load(PROJECT_HOSTS)

    assert result.deploy_host == Host("deploy1", "192.0.2.10")
    assert [(t.name, t.address) for t in result.targets] == [("node1", "192.0.2.11"), ("node2", "192.0.2.12")]
    assert all(
        h.user == "root" and h.port == 22 and h.key is None for h in (result.deploy_host, *result.targets)
    )
    assert result.registry == RegistrySettings(
        port=4000, image="registry:2", volume="registry", network="host"
    )
    assert (result.docker.source, result.docker.config_method) == ("distro", "auto")


@pytest.mark.parametrize(
    "text, key, problem",
    [
        pytest.param("", "", "the file is empty", id="empty"),
        pytest.param("# only a comment\n", "", "the file is empty", id="only-comments"),
        pytest.param("deploy_host: [unclosed\n", "", "not valid YAML (line 2)", id="not-yaml"),
        pytest.param("deploy_host:\n  name: a\n\taddress: b\n", "", "not valid YAML", id="tab-indent"),
        pytest.param("- deploy1\n- node1\n", "top level", "expected a mapping, got a list", id="top-list"),
        pytest.param(
            "deploy1 192.0.2.10\n", "top level", "expected a mapping, got a string", id="top-string"
        ),
        pytest.param("targets: []\n", "deploy_host", "missing", id="no-deploy-host"),
        pytest.param(
            "deploy_host:\n", "deploy_host", "expected a mapping, got nothing", id="deploy-host-null"
        ),
        pytest.param("deploy_host:\n  name: deploy1\n", "deploy_host.address", "missing", id="no-address"),
        pytest.param(
            'deploy_host:\n  name: deploy1\n  address: ""\n',
            "deploy_host.address",
            "missing",
            id="empty-address",
        ),
        pytest.param("deploy_host:\n  address: 192.0.2.10\n", "deploy_host.name", "missing", id="no-name"),
        pytest.param(
            MINIMAL + "targets:\n  - name: node1\n", "targets[0].address", "missing", id="target-no-address"
        ),
        pytest.param(
            MINIMAL + "targets:\n  node1: 192.0.2.11\n",
            "targets",
            "expected a list of hosts, got a mapping",
            id="targets-mapping",
        ),
        pytest.param(
            MINIMAL
            + "targets:\n  - {name: node1, address: 192.0.2.11}\n  - {name: node1, address: 192.0.2.12}\n",
            "targets[1].name",
            "'node1' is listed twice (also targets[0])",
            id="target-name-twice",
        ),
        pytest.param(
            MINIMAL
            + "targets:\n  - {name: node1, address: 192.0.2.11}\n  - {name: node2, address: 192.0.2.11}\n",
            "targets[1].address",
            "'192.0.2.11' is listed twice (also targets[0])",
            id="target-address-twice",
        ),
        pytest.param(
            MINIMAL + "targets:\n  - {name: deploy1, address: 192.0.2.99}\n",
            "targets[0].address",
            "'192.0.2.99': 'deploy1' is the deploy_host, whose address is '192.0.2.10'",
            id="deploy-host-name-other-address",
        ),
        pytest.param(
            MINIMAL
            + "targets:\n  - {name: deploy1, address: 192.0.2.10}\n  - {name: ctl1, address: 192.0.2.10}\n",
            "targets[1].address",
            "'192.0.2.10' is listed twice (also targets[0])",
            id="deploy-host-twice-among-targets",
        ),
        pytest.param(
            MINIMAL + "  port: 0\n", "deploy_host.port", "0 is not a port number (1-65535)", id="port-0"
        ),
        pytest.param(
            MINIMAL + "  port: 70000\n", "deploy_host.port", "70000 is not a port number", id="port-70000"
        ),
        pytest.param(
            MINIMAL + '  port: "22"\n', "deploy_host.port", "'22' is not a port number", id="port-string"
        ),
        pytest.param(
            "defaults:\n  port: yes\n" + MINIMAL, "defaults.port", "True is not a port number", id="port-bool"
        ),
        pytest.param(
            MINIMAL + "registry:\n  port: 65536\n",
            "registry.port",
            "65536 is not a port number",
            id="registry-port",
        ),
        pytest.param(
            MINIMAL + "  adress: 192.0.2.10\n",
            "deploy_host.adress",
            "unknown key (did you mean 'address'?)",
            id="typo-adress",
        ),
        pytest.param(
            MINIMAL + "targes: []\n", "targes", "unknown key (did you mean 'targets'?)", id="typo-top-level"
        ),
        pytest.param(
            MINIMAL + "registry:\n  netwrok: host\n",
            "registry.netwrok",
            "unknown key (did you mean 'network'?)",
            id="typo-registry",
        ),
        pytest.param(
            MINIMAL + "docker:\n  config-method: auto\n",
            "docker.config-method",
            "unknown key (did you mean 'config_method'?)",
            id="typo-docker",
        ),
        pytest.param(
            MINIMAL + "  user: root\n  password: secret\n",
            "deploy_host.password",
            "unknown key",
            id="unknown-key",
        ),
        pytest.param(
            MINIMAL + "  user: yes\n", "deploy_host.user", "expected a string, got bool", id="user-bool"
        ),
        pytest.param(
            MINIMAL + "registry:\n  network: overlay\n",
            "registry.network",
            "'overlay' is not one of host, bridge, auto",
            id="bad-network",
        ),
        pytest.param(
            MINIMAL + "docker:\n  config_method: json\n",
            "docker.config_method",
            "'json' is not one of auto, daemon-json, docker-opts",
            id="bad-config-method",
        ),
        pytest.param(
            MINIMAL + "docker:\n  source: snap\n",
            "docker.source",
            "'snap' is not one of distro, get-docker",
            id="bad-source",
        ),
        pytest.param(
            MINIMAL + "docker:\n  prerequisites: curl\n",
            "docker.prerequisites",
            "expected a list of package names, got a string",
            id="prerequisites-string",
        ),
        pytest.param(
            MINIMAL + "docker:\n  apt_cache_valid_time: -1\n",
            "docker.apt_cache_valid_time",
            "-1 is not a number of seconds",
            id="negative-cache-time",
        ),
        pytest.param(
            MINIMAL + "registry: 4000\n", "registry", "expected a mapping, got int", id="registry-scalar"
        ),
        pytest.param(
            MINIMAL + 'registry:\n  address: "fd00::10"\n',
            "registry.address",
            "IPv6 addresses are rejected by Docker",
            id="ipv6",
        ),
        pytest.param(
            MINIMAL + 'registry:\n  address: "2001:db8::1"\n',
            "registry.address",
            "IPv6 addresses are rejected by Docker",
            id="ipv6-global",
        ),
        pytest.param(
            MINIMAL + "registry:\n  address: 192.0.2.10:4000\n",
            "registry.address",
            "without port (set registry.port)",
            id="address-with-port",
        ),
        pytest.param(
            MINIMAL + "registry:\n  address: registry.lab:5000\n",
            "registry.address",
            "without port",
            id="hostname-with-port",
        ),
        pytest.param(
            MINIMAL + "registry:\n  address: http://192.0.2.10\n",
            "registry.address",
            "without port",
            id="address-url",
        ),
    ],
)
def test_a_bad_file_gives_one_line_naming_the_file_and_key(tmp_path, text, key, problem):
    path = write(tmp_path, text)

    with pytest.raises(InventoryError) as caught:
        inv.load(path)

    message = str(caught.value)
    where = f"{path}: {key}: " if key else f"{path}: "
    assert message.startswith(where), message
    assert problem in message
    assert "\n" not in message


def test_did_you_mean_is_left_out_when_nothing_is_close(tmp_path):
    with pytest.raises(InventoryError) as caught:
        inv.load(write(tmp_path, MINIMAL + "  colour: blue\n"))

    assert str(caught.value) == f"{tmp_path / 'hosts.yaml'}: deploy_host.colour: unknown key"


def test_an_unreadable_file_names_the_file(tmp_path):
    missing = tmp_path / "nowhere" / "hosts.yaml"

    with pytest.raises(InventoryError, match=r"nowhere/hosts\.yaml: cannot read: No such file or directory"):
        inv.load(missing)


@pytest.mark.parametrize("address", ["192.0.2.10", "registry.lab.example", "registry"])
def test_registry_address_accepts_ipv4_and_host_names(tmp_path, address):
    result = inv.load(write(tmp_path, MINIMAL + f"registry:\n  address: {address}\n"))

    assert result.registry.address == address


def test_default_path_is_the_projects_hosts_yaml(monkeypatch):
    monkeypatch.delenv(inv.ENV_VAR, raising=False)

    assert inv.default_path() == PROJECT_HOSTS


def test_default_path_ignores_an_empty_env_var(monkeypatch):
    monkeypatch.setenv(inv.ENV_VAR, "")

    assert inv.default_path() == PROJECT_HOSTS


def test_env_var_selects_the_file_load_reads(tmp_path, monkeypatch):
    path = write(tmp_path / "lab", MINIMAL.replace("deploy1", "lab-deploy"))
    monkeypatch.setenv("KOLLA_REGISTRY_HOSTS", str(path))

    assert inv.default_path() == path
    assert inv.load().deploy_host.name == "lab-deploy"
    assert inv.load().path == path


@pytest.fixture
def loaded(tmp_path, home):
    return inv.load(write(tmp_path, FULL))


@pytest.mark.parametrize(
    "name, expected",
    [("deploy1", "deploy1"), ("node2", "node2"), ("192.0.2.11", "node1"), ("192.0.2.10", "deploy1")],
)
def test_resolve_finds_inventory_hosts_by_name_or_address(loaded, name, expected):
    host = loaded.resolve(name)

    assert host.name == expected
    assert host is loaded.find(name)


def test_resolve_makes_an_ad_hoc_host_with_the_defaults(loaded, home):
    assert loaded.find("10.9.8.7") is None

    assert loaded.resolve("10.9.8.7") == Host(
        "10.9.8.7", "10.9.8.7", user="ubuntu", port=2222, key=f"{home}/.ssh/kolla_ed25519"
    )


def test_resolve_without_defaults_uses_root_on_port_22():
    inventory = Inventory(path=Path("/x/hosts.yaml"), deploy_host=Host("deploy1", "192.0.2.10"))

    assert inventory.resolve("spare") == Host("spare", "spare", user="root", port=22)


@pytest.mark.parametrize(
    "target",
    ["{name: deploy1, address: 192.0.2.10}", "{name: ctl1, address: 192.0.2.10}"],
    ids=["same-name-and-address", "same-address"],
)
def test_the_deployment_host_may_be_a_target_too(tmp_path, target):
    text = MINIMAL + f"targets:\n  - {target}\n  - {{name: node1, address: 192.0.2.11}}\n"

    loaded = inv.parse(text, tmp_path / "hosts.yaml")

    first, node1 = loaded.targets
    assert loaded.is_deploy_host(first) and not loaded.is_deploy_host(node1)
    assert loaded.is_deploy_host(loaded.deploy_host)


@pytest.mark.parametrize(
    "registry, known",
    [
        ({}, ""),
        ({"bind": "192.0.2.10"}, "192.0.2.10"),
        ({"bind": "192.0.2.10", "address": "reg.lab"}, "reg.lab"),
    ],
)
def test_the_registry_address_the_inventory_gives_is_its_address_else_its_bind(registry, known):
    assert RegistrySettings(**registry).known_address == known


# --- write_as: the folders a user owns, written as that user (issue 19, item 1) ---------------------


def test_write_as_maps_folders_to_the_users_that_write_them(tmp_path):
    text = "defaults:\n  write_as: {/etc/kolla/: operator}\n" + MINIMAL + "  write_as:\n    /srv/kolla: kolla\n"
    loaded = inv.load(write(tmp_path, text))

    assert loaded.defaults.write_as == (("/etc/kolla", "operator"),)
    assert loaded.deploy_host.write_as == (("/srv/kolla", "kolla"),)


@pytest.mark.parametrize(
    "value, key, problem",
    [
        ("operator", "deploy_host.write_as", "expected a mapping of folders to user names, got a string"),
        ("{etc/kolla: operator}", "deploy_host.write_as.etc/kolla", "is not an absolute folder"),
        ("{/: operator}", "deploy_host.write_as./", "is not an absolute folder"),
        ("{'/etc/kolla $(id)': operator}", "deploy_host.write_as./etc/kolla $(id)", "is not an absolute folder"),
        ("{/etc/../root: operator}", "deploy_host.write_as./etc/../root", "is not an absolute folder"),
        ("{/etc/kolla: 'op;rm'}", "deploy_host.write_as./etc/kolla", "'op;rm' is not a user name other than root"),
        ("{/etc/kolla: root}", "deploy_host.write_as./etc/kolla", "'root' is not a user name other than root"),
    ],
)
def test_a_bad_write_as_is_named(tmp_path, value, key, problem):
    path = write(tmp_path, MINIMAL + f"  write_as: {value}\n")

    with pytest.raises(InventoryError) as caught:
        inv.load(path)

    assert str(caught.value) == f"{path}: {key}: {caught.value.args[0].split(': ', 2)[2]}"
    assert problem in str(caught.value)


# --- addresses: an IPv6 zone id is no address (issue 19, item 11) ---------------------------------


@pytest.mark.parametrize("address", ["fe80::1%$(reboot)", "fe80::1%`id`", "fe80::1%eth0", "fe80::1%25eth0"])
def test_an_ipv6_zone_id_is_refused(tmp_path, address):
    path = write(tmp_path, f'deploy_host:\n  name: deploy1\n  address: "{address}"\n')

    with pytest.raises(InventoryError) as caught:
        inv.load(path)

    assert str(caught.value) == f"{path}: deploy_host.address: {address!r} is not a host name or IP address"
