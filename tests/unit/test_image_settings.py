"""inventory: the images: section (and --images files) in, ImageSettings or one line naming the key out."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from fabfile import inventory as inv
from fabfile.model.inventory import ImageSettings, InventoryError

# The project's own hosts.yaml, found from here (not from the code under test).
PROJECT_HOSTS = Path(__file__).resolve().parents[2] / "hosts.yaml"

MINIMAL = """\
deploy_host:
  name: deploy1
  address: 192.0.2.10
"""

SERVICES = """\
images:
  tag: 2024.1-ubuntu-jammy
  services: [keystone, nova-api]
"""


def write(folder: Path, text: str, name: str = "hosts.yaml") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text)
    return path


def test_without_an_images_section_there_is_no_image_list(tmp_path):
    assert inv.load(write(tmp_path, MINIMAL)).images is None


def test_services_at_a_tag_with_every_default(tmp_path):
    images = inv.load(write(tmp_path, MINIMAL + SERVICES)).images

    assert images == ImageSettings(tag="2024.1-ubuntu-jammy", services=("keystone", "nova-api"))
    assert (images.registry, images.namespace, images.insecure, images.archive) == (
        "quay.io",
        "openstack.kolla",
        False,
        None,
    )


def test_every_key(tmp_path):
    text = MINIMAL + (
        "images:\n"
        "  registry: 10.0.0.5:5000\n"
        "  namespace: kolla\n"
        "  insecure: true\n"
        "  tag: master\n"
        "  services: [glance-api]\n"
        "  names:\n"
        "    - 10.0.0.5:5000/kolla/keystone:zed\n"
        "    - openstack.kolla/nova-api\n"
        "    - horizon:2023.2\n"
        "  archive: images/kolla.tar\n"
    )
    images = inv.load(write(tmp_path / "site", text)).images

    assert images == ImageSettings(
        registry="10.0.0.5:5000",
        namespace="kolla",
        insecure=True,
        tag="master",
        services=("glance-api",),
        # The upstream registry is left out: names are relative to it.
        names=("kolla/keystone:zed", "openstack.kolla/nova-api", "horizon:2023.2"),
        archive=str(tmp_path / "site" / "images" / "kolla.tar"),
    )


def test_names_with_their_own_tags_need_no_tag(tmp_path):
    images = inv.load(write(tmp_path, MINIMAL + "images:\n  names: [keystone:zed]\n")).images

    assert images.names == ("keystone:zed",) and images.tag is None


@pytest.mark.parametrize(
    "section, key, problem",
    [
        pytest.param("images: []\n", "images", "expected a mapping, got a list", id="list"),
        pytest.param("images:\n  tag: zed\n", "images", "no images: give names, or tag with", id="no-images"),
        pytest.param("images:\n  services: [keystone]\n", "images.tag", "missing: services", id="no-tag"),
        pytest.param(
            "images:\n  names: [keystone]\n", "images.tag", "names (keystone has no tag)", id="untagged-name"
        ),
        pytest.param(
            "images:\n  tag: 2023.10\n  services: [keystone]\n",
            "images.tag",
            "2023.1 was read as a number: quote the tag",
            id="tag-float",
        ),
        pytest.param(
            "images:\n  tag: 'a b'\n  services: [keystone]\n",
            "images.tag",
            "not a valid image tag",
            id="tag-space",
        ),
        pytest.param(
            "images:\n  tag: zed\n  services: [Keystone]\n",
            "images.services[0]",
            "'Keystone' is not an image name",
            id="uppercase",
        ),
        pytest.param(
            "images:\n  tag: zed\n  services: [keystone:zed]\n",
            "images.services[0]",
            "a service is a name without tag",
            id="service-with-tag",
        ),
        pytest.param(
            "images:\n  names: [keystone@sha256:abc]\n",
            "images.names[0]",
            "give a tag, not a digest",
            id="digest",
        ),
        pytest.param(
            "images:\n  registry: https://quay.io\n  names: [keystone:zed]\n",
            "images.registry",
            "give host[:port] only (insecure: true for plain HTTP)",
            id="url",
        ),
        pytest.param(
            "images:\n  insecure: yes please\n  names: [keystone:zed]\n",
            "images.insecure",
            "expected true or false, got a string",
            id="insecure-string",
        ),
        pytest.param(
            "images:\n  namespace: Kolla\n  names: [keystone:zed]\n",
            "images.namespace",
            "'Kolla' is not a repository path",
            id="namespace",
        ),
        pytest.param(
            "images:\n  services: keystone\n  tag: zed\n",
            "images.services",
            "expected a list, got a string",
            id="services-string",
        ),
        pytest.param(
            "images:\n  tags: zed\n  names: [keystone:zed]\n",
            "images.tags",
            "unknown key (did you mean 'tag'?)",
            id="typo",
        ),
    ],
)
def test_a_bad_images_section_names_the_file_and_key(tmp_path, section, key, problem):
    path = write(tmp_path, MINIMAL + section)

    with pytest.raises(InventoryError) as caught:
        inv.load(path)

    assert str(caught.value).startswith(f"{path}: {key}: "), caught.value
    assert problem in str(caught.value)


@pytest.mark.parametrize("text", [SERVICES, SERVICES.replace("images:\n", "").replace("  ", "")])
def test_an_images_file_holds_the_section_with_or_without_its_key(tmp_path, text):
    images = inv.load_images(write(tmp_path, text, "images.yaml"))

    assert images == ImageSettings(tag="2024.1-ubuntu-jammy", services=("keystone", "nova-api"))


def test_an_images_file_archive_is_relative_to_that_file(tmp_path):
    path = write(tmp_path / "lists", "names: [keystone:zed]\narchive: kolla.tar\n", "images.yaml")

    assert inv.load_images(path).archive == str(tmp_path / "lists" / "kolla.tar")


@pytest.mark.parametrize(
    "text, problem",
    [("images: [\n", "not valid YAML"), ("tag: zed\n", "images: no images"), ("", "expected a mapping")],
)
def test_a_bad_images_file_names_the_file(tmp_path, text, problem):
    path = write(tmp_path, text, "images.yaml")

    with pytest.raises(InventoryError, match=problem):
        inv.load_images(path)


def test_a_missing_images_file_names_the_file(tmp_path):
    with pytest.raises(InventoryError, match=r"images\.yaml: cannot read: No such file"):
        inv.load_images(tmp_path / "images.yaml")


def example_blocks() -> list[str]:
    """hosts.yaml's commented images: examples, each uncommented (the list, then kolla-ansible's)."""
    example = PROJECT_HOSTS.read_text()
    blocks = example[example.index("# images:") :].split("\n# Or each host's own images")
    kolla = blocks[1][blocks[1].index("# images:") :]
    return ["\n".join(line[2:] for line in block.splitlines()) for block in (blocks[0], kolla)]


def test_the_example_images_block_in_hosts_yaml_is_valid(tmp_path):
    images = inv.load(write(tmp_path, MINIMAL + example_blocks()[0])).images

    assert images.tag == "2024.1-ubuntu-jammy" and "nova-api" in images.services
    assert (images.max_requests, images.snapshot, images.keep_releases) == (8, False, ())
    assert images.lock == str(tmp_path / "kolla-images.lock.yaml")


def test_the_example_kolla_ansible_block_in_hosts_yaml_is_valid(tmp_path):
    (tmp_path / "multinode").write_text("[control]\nctl1\n")
    (tmp_path / "kolla").mkdir()
    (tmp_path / "venv").mkdir()
    block = example_blocks()[1].replace("/etc/kolla/multinode", "multinode").replace("/etc/kolla", "kolla")

    images = inv.load(write(tmp_path, MINIMAL + block.replace("~/kolla-venv", "venv"))).images

    assert images.kolla.inventory == (str(tmp_path / "multinode"),) and images.kolla.config_dir == str(tmp_path / "kolla")
    assert images.kolla.virtualenv == str(tmp_path / "venv") and images.services == ()


def test_a_private_upstream_gives_its_user_and_a_password_file(tmp_path):
    secret = tmp_path / "quay-password"
    secret.write_text("s3cret\n")
    path = tmp_path / "images.yaml"
    path.write_text(f"registry: quay.io\nusername: org+robot\npassword_file: {secret}\ntag: '1'\nservices: [a]\n")

    found = inv.load_images(path)

    assert (found.username, found.password_file) == ("org+robot", str(secret))


@pytest.mark.parametrize(
    "extra, problem",
    [
        ("username: org+robot\n", "images.username: a private upstream needs both username and password_file"),
        ("username: 'x;y'\npassword_file: /etc/hostname\n", "images.username: 'x;y' is not a registry user name"),
        ("username: u\npassword_file: /nonexistent/pw\n", "images.password_file: /nonexistent/pw: cannot read"),
        (
            "insecure: true\nusername: org+robot\npassword_file: /etc/hostname\n",
            "images.insecure: a private upstream's login (username, password_file) is never sent over plain HTTP",
        ),
    ],
)
def test_a_private_upstream_login_is_checked(tmp_path, extra, problem):
    path = tmp_path / "images.yaml"
    path.write_text("tag: '1'\nservices: [a]\n" + extra)
    with pytest.raises(InventoryError, match=re.escape(problem)):
        inv.load_images(path)


def test_max_requests_caps_the_upstream_and_is_checked(tmp_path):
    assert inv.load(write(tmp_path, MINIMAL + SERVICES)).images.max_requests == 8
    assert inv.load(write(tmp_path, MINIMAL + SERVICES + "  max_requests: 2\n")).images.max_requests == 2
    for bad in ("0", "65", "many", "true"):
        path = write(tmp_path, MINIMAL + SERVICES + f"  max_requests: {bad}\n")
        with pytest.raises(InventoryError) as caught:
            inv.load(path)
        assert str(caught.value).startswith(f"{path}: images.max_requests: ") and "from 1 to 64" in str(caught.value)


def test_the_lock_snapshot_and_kept_releases(tmp_path):
    text = MINIMAL + SERVICES + "  lock: locks/site.lock.yaml\n  snapshot: true\n  keep_releases: ['2025.1-r2', r3]\n"

    images = inv.load(write(tmp_path, text)).images

    assert images.lock == str(tmp_path / "locks" / "site.lock.yaml")
    assert images.snapshot is True and images.keep_releases == ("2025.1-r2", "r3")
    default = inv.load(write(tmp_path, MINIMAL + SERVICES)).images
    assert (default.lock, default.snapshot, default.keep_releases) == ("", False, ())


@pytest.mark.parametrize(
    ("extra", "key", "problem"),
    [
        ("  snapshot: daily\n", "images.snapshot", "expected true or false"),
        ("  keep_releases: r3\n", "images.keep_releases", "expected a list"),
        ("  keep_releases: [2025.1]\n", "images.keep_releases[0]", "was read as a number: quote the release"),
        ("  keep_releases: ['r3; rm -rf /']\n", "images.keep_releases[0]", "is not a release name"),
    ],
)
def test_bad_release_keys_name_the_key(tmp_path, extra, key, problem):
    path = write(tmp_path, MINIMAL + SERVICES + extra)

    with pytest.raises(InventoryError) as caught:
        inv.load(path)

    assert str(caught.value).startswith(f"{path}: {key}: ") and problem in str(caught.value)


def test_a_tag_filter_by_suffix_or_regular_expression(tmp_path):
    suffix = inv.load(write(tmp_path, MINIMAL + "images:\n  tag_filter: {suffix: -aarch64}\n  services: [nova-api]\n")).images
    regex = inv.load(write(tmp_path, MINIMAL + "images:\n  tag_filter: {regex: '^2025\\.1-'}\n  names: [kolla/x]\n")).images

    assert suffix.tag_filter == "\\-aarch64$" and suffix.tag is None and suffix.services == ("nova-api",)
    assert regex.tag_filter == "^2025\\.1-" and regex.names == ("kolla/x",)


@pytest.mark.parametrize(
    ("section", "key", "problem"),
    [
        ("  tag_filter: -aarch64\n  services: [a]\n", "images.tag_filter", "expected a mapping"),
        ("  tag_filter: {suffix: x, regex: y}\n  services: [a]\n", "images.tag_filter", "give one of suffix or regex"),
        ("  tag_filter: {regex: '(unclosed'}\n  services: [a]\n", "images.tag_filter.regex", "not a regular expression"),
        ("  tag_filter: {suffix: 'a b'}\n  services: [a]\n", "images.tag_filter.suffix", "is not the end of an image tag"),
        ("  tag_filter: {prefix: a}\n  services: [a]\n", "images.tag_filter.prefix", "unknown key"),
        ("  from: kolla-ansible\n  inventory: x\n  tag_filter: {suffix: a}\n", "images.tag_filter", "not with images.from"),
    ],
)
def test_a_bad_tag_filter_names_its_key(tmp_path, section, key, problem):
    (tmp_path / "x").write_text("[control]\nc1\n")
    path = write(tmp_path, MINIMAL + "images:\n" + section)

    with pytest.raises(InventoryError) as caught:
        inv.load(path)

    assert str(caught.value).startswith(f"{path}: {key}: ") and problem in str(caught.value)
