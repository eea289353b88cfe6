"""kolla-ansible's own `pull` against the lab's registry, with TLS and login: the real client is the oracle.

The lab plays a small cloud: node4 is the controller (and network, monitoring) and node5 the compute
node (and storage), both Debian 13 with Docker, as kolla 2026.2 expects. An upstream registry on the
lab network holds small stand-in images under the real names, made by the lab's engine; the tool
syncs the set kolla-ansible itself computes, wires globals.yml, and kolla-ansible (23, from PyPI,
in its own virtualenv on this machine) pulls on both nodes with only what kolla-globals wrote and
kolla-ansible's mandatory settings. What each node then holds is exactly what the tool computed.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from fabfile.kolla.imageset import kolla_images
from tests.conftest import unavailable
from tests.kolla_env import KollaEnvUnavailable, kolla_venv, sample_children

from .conftest import ensure_deployed, inventory_variant

pytestmark = pytest.mark.e2e

CONTROLLER, COMPUTE = "node4", "node5"
UPSTREAM_CONTAINER, UPSTREAM_IP = "lab-kolla-upstream", "10.77.0.7"
UPSTREAM = f"{UPSTREAM_IP}:5000"
SECURE = {"tls": "self-signed", "auth": "htpasswd"}
# kolla-ansible's mandatory settings, and the operator's own line that must survive kolla-globals.
OPERATORS_GLOBALS = """---
# The lab cloud's globals, by hand.
kolla_internal_vip_address: "10.77.0.250"
network_interface: "eth0"
"""
KOLLA_FILES = ("globals.yml", "passwords.yml")


def run(command: list[str], env: dict | None = None, timeout: int = 900) -> subprocess.CompletedProcess:
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=timeout, check=False)
    print(done.stdout[-5000:], done.stderr[-3000:])
    return done


def kolla_inventory(lab, venv: Path, folder: Path) -> Path:
    """The two-node cloud as kolla-ansible's sample multinode inventory groups it."""
    key = lab.key
    node = {name: f"{name} ansible_host={lab.node_ip(name)} ansible_user=root ansible_ssh_private_key_file={key}"
            for name in (CONTROLLER, COMPUTE)}
    groups = {"control": CONTROLLER, "network": CONTROLLER, "compute": COMPUTE, "monitoring": CONTROLLER,
              "storage": COMPUTE}
    text = "".join(f"[{group}]\n{node[name]}\n\n" for group, name in groups.items())
    text += "[deployment]\nlocalhost ansible_connection=local\n\n" + sample_children(venv)
    path = folder / "multinode"
    path.write_text(text)
    return path


@pytest.fixture(scope="module")
def kolla(lab, tmp_path_factory):
    """kolla-ansible's virtualenv, its inventory of the lab's two nodes, and a config dir here."""
    try:
        venv = kolla_venv()
    except KollaEnvUnavailable as error:
        unavailable(str(error))
    folder = tmp_path_factory.mktemp("kolla")
    config = folder / "etc-kolla"
    config.mkdir()
    (config / "globals.yml").write_text(OPERATORS_GLOBALS)
    return venv, kolla_inventory(lab, venv, folder), config


@pytest.fixture(scope="module")
def upstream(lab, kolla, tmp_path_factory):
    """The lab's quay.io: every image kolla-ansible would pull on the two nodes, as a tiny stand-in."""
    venv, inventory, config = kolla
    built = tmp_path_factory.mktemp("stand-ins")
    found = kolla_images([str(inventory)], str(config), str(venv))
    images = sorted({pulled.image for host in found.hosts.values() for pulled in host}, key=lambda image: image.name)
    lab.docker("rm", "-f", "-v", UPSTREAM_CONTAINER, check=False)
    lab.docker("run", "-d", "--name", UPSTREAM_CONTAINER, "--network", "kolla-lab", "--ip", UPSTREAM_IP,
               "-p", "127.0.0.1::5000", "registry:2")  # fmt: skip
    port = lab.docker("port", UPSTREAM_CONTAINER, "5000/tcp").stdout.strip().rsplit(":", 1)[1]
    pushed = []
    try:
        time.sleep(1)
        for image in images:
            local = f"127.0.0.1:{port}/{image.path}:{image.tag}"
            # One small file naming the image: each stand-in its own digest.
            content = built / image.path.replace("/", "_")
            content.mkdir()
            (content / "image").write_text(f"{image.name}\n")
            tarball = built / f"{content.name}.tar"
            subprocess.run(["tar", "-C", str(content), "-cf", str(tarball), "."], check=True)
            with tarball.open("rb") as handle:
                lab.docker("import", "-", local, stdin=handle.fileno())
            lab.docker("push", local)
            pushed.append(local)
        yield images
    finally:
        lab.docker("rm", "-f", "-v", UPSTREAM_CONTAINER, check=False)
        if pushed:
            lab.docker("rmi", *pushed, check=False)


@pytest.fixture(scope="module")
def cloud(lab, hosts, fab, kolla, upstream, tmp_path_factory):
    """The tool's inventory: the registry with TLS and login, images and targets from kolla-ansible;
    the nodes as kolla-ansible's bootstrap-servers would leave them (python3-docker, python3-dbus)."""
    venv, inventory, config = kolla
    for name in (CONTROLLER, COMPUTE):
        hosts.run(name, "command -v python3 >/dev/null && python3 -c 'import docker, dbus' 2>/dev/null || "
                        "DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3-docker python3-dbus >/dev/null")
    images = {"from": "kolla-ansible", "inventory": str(inventory), "config_dir": str(config),
              "kolla_ansible": str(venv), "registry": UPSTREAM, "insecure": True}

    def edit(data: dict) -> None:
        data["targets"] = "kolla-ansible"
        data["images"] = images
        data["registry"] = {**data.get("registry", {}), **SECURE}

    path = inventory_variant(Path(lab.inventory), tmp_path_factory.mktemp("cloud"), edit=edit)
    yield path
    # Back to the procedure's registry and untouched nodes, as every other test expects them.
    ensure_deployed(fab)
    for name in (CONTROLLER, COMPUTE):
        hosts.run(name, "rm -rf /etc/docker/certs.d; docker images -q '*/openstack.kolla/*' | xargs -r docker rmi -f "
                        ">/dev/null; rm -f /root/.docker/config.json", check=False)


def held(hosts, name: str, registry: str) -> set[str]:
    listed = hosts.run(name, "docker images --format '{{.Repository}}:{{.Tag}}'").splitlines()
    return {ref for ref in listed if ref.startswith(f"{registry}/openstack.kolla/")}


def test_kolla_ansible_pull_succeeds_with_what_the_tool_wrote_and_pulls_exactly_what_it_computed(
    lab, hosts, fab, kolla, upstream, cloud
):
    venv, inventory, config = kolla
    registry = f"{hosts.inventory.deploy_host.address}:{hosts.inventory.registry.port}"
    for step in ("deploy-host", "configure-targets"):
        done = fab(step, inventory=cloud)
        assert done.code == 0, done.output
    assert f"{CONTROLLER} | configure-targets" in done.output and f"{COMPUTE} | configure-targets" in done.output

    synced = fab("sync-images", inventory=cloud)
    assert synced.code == 0, synced.output
    assert f"{len(upstream)} images: {len(upstream)} copied" in synced.output
    # One line per image, with the hosts that need it: nova-compute for the compute node only.
    compute_line = next(line for line in synced.output.splitlines() if line.startswith("openstack.kolla/nova-compute "))
    assert COMPUTE in compute_line and CONTROLLER not in compute_line

    # kolla-ansible's own order: kolla-genpwd fills its template, then kolla-globals adds the registry's.
    template = venv / "share" / "kolla-ansible" / "etc_examples" / "kolla" / "passwords.yml"
    (config / "passwords.yml").write_text(template.read_text())
    assert run([str(venv / "bin" / "kolla-genpwd"), "-p", str(config / "passwords.yml")]).returncode == 0
    hosts.write("deploy1", "/etc/kolla/globals.yml", OPERATORS_GLOBALS)
    hosts.write("deploy1", "/etc/kolla/passwords.yml", (config / "passwords.yml").read_text())
    wired = fab("kolla-globals", inventory=cloud)
    assert wired.code == 0, wired.output
    # kolla-ansible runs here, not on the deployment host: its files are copied as the README says.
    for name in KOLLA_FILES:
        (config / name).write_text(hosts.run("deploy1", f"cat /etc/kolla/{name}") + "\n")
    wrote = yaml.safe_load((config / "globals.yml").read_text())
    assert wrote["docker_registry"] == registry and wrote["docker_registry_insecure"] is False
    assert "network_interface" in wrote  # the operator's own lines kept

    env = {**os.environ, "ANSIBLE_HOST_KEY_CHECKING": "False", "ANSIBLE_PYTHON_INTERPRETER": "/usr/bin/python3",
           "PATH": f"{venv / 'bin'}:{os.environ['PATH']}"}
    pulled = run([str(venv / "bin" / "kolla-ansible"), "pull", "-i", str(inventory), "--configdir", str(config)], env)
    assert pulled.returncode == 0, pulled.stdout[-3000:]

    computed = kolla_images([str(inventory)], str(config), str(venv))
    for name in (CONTROLLER, COMPUTE):
        expected = {f"{registry}/{pulled_image.image.name}" for pulled_image in computed.hosts[name]}
        assert held(hosts, name, registry) == expected, name

    # What check-images and pull-images compute is what kolla-ansible pulled: all there, nothing to pull.
    checked = fab("check-images", inventory=cloud)
    assert checked.code == 0, checked.output
    for name in (CONTROLLER, COMPUTE):
        count = len(computed.hosts[name])
        assert f"{name} | check-images | OK | {count} images resolve with the registry's digests" in checked.output
    again = fab("pull-images", inventory=cloud)
    assert again.code == 0 and again.output.count("| OK | holds ") == 2, again.output
