"""Planners: HostFacts + StepContext in, StepPlan out (pyinfra-style: facts in, expected plan out)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace

import pytest

from fabfile.actions import deploy
from fabfile.engines.docker import config as dc
from fabfile.engines.docker import install as hostprep
from fabfile.engines.docker import trust
from fabfile.engines.docker.install import SHARED_RUN_TEXT, SHARED_RUN_UNIT
from fabfile.engines.docker.paths import DAEMON_JSON, DEFAULT_DOCKER
from fabfile.model.paths import PENDING
from fabfile.model.plan import RELOAD, RESTART, FileChange, Handler
from fabfile.registry import container as registry_step
from fabfile.registry.container import SPEC_LABEL
from fabfile.registry.paths import CA_CERT, CA_DIR, CA_KEY, HTPASSWD, SERVER_CERT, SERVER_KEY, TLS_DIR

from .factories import (
    DOCKER_1_11_EXEC_START,
    DOCKER_CE_EXEC_START,
    IMAGE_ID,
    OLD_VOLUME,
    PREREQUISITES,
    READS_DEFAULT_DOCKER,
    REGISTRY,
    REGISTRY_IP,
    UBUNTU1404_OS,
    applied,
    changed,
    container,
    docker_ce_host,
    docker_host,
    fresh_debian,
    make_ctx,
)

KOLLA_DROPIN = dc.MOUNTFLAGS_DROPIN


def daemon_json(**config) -> dict[str, str]:
    return {DAEMON_JSON: json.dumps(config, indent=2) + "\n"}


def written(plan, path: str) -> str | None:
    """The text ``plan`` writes to ``path`` (None: removed); fails when it does not touch it."""
    [change] = [change for change in plan.files if change.path == path]
    return change.after


# --- update-packages (step 1) ----------------------------------------------------------------


@pytest.mark.parametrize(
    "os_release, named",
    [
        ({"ID": "centos", "PRETTY_NAME": "CentOS Stream 9", "ID_LIKE": "rhel fedora"}, "CentOS Stream 9"),
        ({"ID": "alpine", "VERSION_ID": "3.19.1"}, "alpine"),
        ({}, "unknown OS"),
    ],
)
def test_update_packages_unsupported_os_names_it(os_release, named):
    plan = hostprep.update_packages(fresh_debian(os=os_release), make_ctx())

    assert plan.error == f"unsupported OS: {named} (needs apt: Debian or Ubuntu)"
    assert not plan.changed


@pytest.mark.parametrize(
    "os_release",
    [
        {"ID": "debian", "VERSION_ID": "12"},
        UBUNTU1404_OS,
        {"ID": "linuxmint", "ID_LIKE": "ubuntu debian"},
        {"ID": "raspbian", "ID_LIKE": "debian"},
    ],
)
def test_update_packages_apt_based_oses_are_supported(os_release):
    plan = hostprep.update_packages(fresh_debian(os=os_release, apt_lists_age=99999), make_ctx())

    assert plan.error is None
    assert plan.commands[0] == "apt-get update -q"


def test_update_packages_fresh_index_runs_nothing():
    plan = hostprep.update_packages(fresh_debian(apt_lists_age=600), make_ctx())

    assert plan.commands == [] and not plan.changed
    assert plan.notes == ["package index is 600s old (refreshed every 3600s)"]


def test_update_packages_stale_index_updates_and_stamps():
    plan = hostprep.update_packages(fresh_debian(apt_lists_age=3600), make_ctx())

    assert plan.commands == [
        "apt-get update -q",
        "mkdir -p /var/lib/kolla-registry",
        "touch /var/lib/kolla-registry/apt-updated",
    ]
    assert plan.changed


def test_update_packages_valid_time_zero_always_updates():
    plan = hostprep.update_packages(
        fresh_debian(apt_lists_age=0), make_ctx(docker={"apt_cache_valid_time": 0})
    )

    assert "apt-get update -q" in plan.commands


# --- upgrade-kernel (step 2) -----------------------------------------------------------------


def test_upgrade_kernel_ubuntu_1404_installs_wily_and_says_reboot():
    facts = fresh_debian(os=UBUNTU1404_OS, kernel="3.13.0-170-generic", packages={"linux-image-generic"})

    plan = hostprep.upgrade_kernel(facts, make_ctx())

    assert plan.error is None
    assert len(plan.commands) == 1
    assert plan.commands[0].endswith("apt-get install -y -q linux-image-generic-lts-wily")
    assert plan.notes == ["running 3.13.0-170-generic: reboot into the 4.2 LTS kernel (not rebooted)"]


def test_upgrade_kernel_ubuntu_1404_installed_but_not_rebooted():
    facts = fresh_debian(
        os=UBUNTU1404_OS, kernel="3.13.0-170-generic", packages={"linux-image-generic-lts-wily"}
    )

    plan = hostprep.upgrade_kernel(facts, make_ctx())

    assert plan.commands == []
    assert "reboot" in plan.notes[0]


def test_upgrade_kernel_ubuntu_1404_on_wily_has_nothing_to_do():
    facts = fresh_debian(
        os=UBUNTU1404_OS, kernel="4.2.0-42-generic", packages={"linux-image-generic-lts-wily"}
    )

    plan = hostprep.upgrade_kernel(facts, make_ctx())

    assert not plan.changed and plan.notes == [] and plan.error is None


@pytest.mark.parametrize(
    "kernel, error, note",
    [
        ("6.1.0-18-amd64", None, "kernel 6.1.0-18-amd64 supports overlay2"),
        ("4.0.0", None, "kernel 4.0.0 supports overlay2"),
        (
            "3.16.0-11-amd64",
            None,
            "kernel 3.16.0-11-amd64: overlay2 needs 4.0 or newer; Docker will use another driver",
        ),
        ("3.10.0-1160.el7.x86_64", None, "kernel 3.10.0-1160.el7.x86_64: overlay2 needs 4.0"),
        ("3.2.0-4-amd64", "kernel 3.2.0-4-amd64 is older than 3.10, the oldest Docker runs on", None),
    ],
)
def test_upgrade_kernel_elsewhere_only_checks(kernel, error, note):
    plan = hostprep.upgrade_kernel(fresh_debian(kernel=kernel), make_ctx())

    assert plan.commands == []
    assert plan.error == error
    if note:
        assert plan.notes[0].startswith(note)


# --- install-docker (step 3) -----------------------------------------------------------------


def test_install_docker_on_fresh_debian_installs_prerequisites_then_docker_io():
    plan = hostprep.install_docker(fresh_debian(), make_ctx())

    assert plan.error is None
    missing = [p for p in PREREQUISITES if p != "curl"]
    assert plan.commands == [
        f"{hostprep.APT_INSTALL} --no-install-recommends {' '.join(missing)}",
        f"{hostprep.APT_INSTALL} docker.io",
    ]
    assert plan.notes == ["system Python is externally managed (PEP 668): pip left to the OS"]


def test_install_docker_get_docker_source_uses_the_installer():
    plan = hostprep.install_docker(fresh_debian(), make_ctx(docker={"source": "get-docker"}))

    assert plan.commands[-1] == "curl -fsSL https://get.docker.com | sh"
    assert not any("docker.io" in command for command in plan.commands)


@pytest.mark.parametrize(
    "externally_managed, pip_version, upgrades",
    [
        (True, "9.0.1", False),
        (False, "9.0.1", True),
        (False, "20.2.4", True),
        (False, "20.3", False),
        (False, "23.0.1", False),
    ],
)
def test_install_docker_pip_is_upgraded_only_when_old_and_allowed(externally_managed, pip_version, upgrades):
    facts = docker_host(externally_managed=externally_managed, pip_version=pip_version)

    plan = hostprep.install_docker(facts, make_ctx())

    assert ("python3 -m pip install -U pip setuptools" in plan.commands) is upgrades
    assert not any("pip install" in c for c in plan.commands if not upgrades)


def test_install_docker_too_old_docker_is_an_error():
    plan = hostprep.install_docker(docker_host("1.9.1"), make_ctx())

    assert plan.error == "Docker 1.9.1 is older than 1.10, which Kolla needs"
    assert plan.commands == [] and plan.files == []


def test_install_docker_installed_and_running_has_nothing_to_do():
    plan = hostprep.install_docker(docker_host(), make_ctx())

    assert not plan.changed and plan.error is None and plan.handler is None
    assert plan.notes[-1] == "Docker 20.10.24+dfsg1"


def test_install_docker_starts_a_stopped_docker():
    facts = docker_host(
        docker_answers=False,
        unit={**docker_host().engine("docker").service, "ActiveState": "failed", "MainPID": "0"},
    )

    plan = hostprep.install_docker(facts, make_ctx())

    assert plan.commands == ["systemctl enable docker && systemctl start docker"]


@pytest.mark.parametrize("version", ["18.09.0", "20.10.24+dfsg1", "24.0.7"])
def test_install_docker_new_docker_removes_the_procedures_mountflags_dropin(version):
    facts = docker_host(
        version, files={**docker_host().files, KOLLA_DROPIN: "[Service]\nMountFlags=shared\n"}
    )

    plan = hostprep.install_docker(facts, make_ctx())

    assert plan.files == [FileChange(KOLLA_DROPIN, "[Service]\nMountFlags=shared\n", None)]
    assert plan.handler == RESTART
    assert f"MountFlags=shared removed from {KOLLA_DROPIN}: it breaks Docker >= 18.09" in plan.notes
    assert plan.summary().startswith(f"remove {KOLLA_DROPIN}")


def test_install_docker_new_docker_keeps_the_rest_of_a_dropin():
    dropin = f"{dc.DROPIN_DIR}/override.conf"
    facts = docker_host(files={dropin: "[Service]\nMountFlags=shared\nLimitNOFILE=1048576\n"})

    plan = hostprep.install_docker(facts, make_ctx())

    assert written(plan, dropin) == "[Service]\nLimitNOFILE=1048576\n"
    assert plan.handler == RESTART


@pytest.mark.parametrize("version", ["17.06.2-ce", "18.06.3-ce", "1.13.1"])
def test_install_docker_old_docker_gets_the_mountflags_dropin_and_shared_run(version):
    facts = docker_host(version, run_propagation="private")

    plan = hostprep.install_docker(facts, make_ctx())

    assert written(plan, KOLLA_DROPIN) == "[Service]\nMountFlags=shared\n"
    assert written(plan, SHARED_RUN_UNIT) == SHARED_RUN_TEXT
    shared_run = "mount --make-shared /run && systemctl daemon-reload && systemctl enable %s"
    assert plan.commands == [shared_run % "kolla-registry-shared-run.service"]
    assert plan.handler == RESTART


def test_install_docker_old_docker_with_shared_run_only_writes_the_dropin():
    plan = hostprep.install_docker(docker_host("17.06.2-ce", run_propagation="shared"), make_ctx())

    assert [change.path for change in plan.files] == [KOLLA_DROPIN]
    assert plan.commands == []


def test_install_docker_old_docker_converges():
    facts = docker_host("17.06.2-ce", run_propagation="private")
    first = hostprep.install_docker(facts, make_ctx())

    after = changed(applied(facts, first), run_propagation="shared")
    second = hostprep.install_docker(after, make_ctx())

    assert first.changed
    assert not second.changed and second.handler is None


def test_install_docker_new_docker_converges_after_the_dropin_is_removed():
    facts = docker_host(files={KOLLA_DROPIN: "[Service]\nMountFlags=shared\n"})
    first = hostprep.install_docker(facts, make_ctx())

    second = hostprep.install_docker(applied(facts, first), make_ctx())

    assert KOLLA_DROPIN not in applied(facts, first).files
    assert not second.changed


# --- create-registry (step 4) ----------------------------------------------------------------


def spec(ctx=None, host_network=True, image_id=IMAGE_ID) -> str:
    return registry_step.registry_spec(ctx or make_ctx(), host_network, image_id)


def test_create_registry_needs_docker_answering():
    plan = registry_step.create_registry(docker_host(docker_answers=False), make_ctx())

    assert plan.error == "Docker is not running here: run install-docker first"
    assert not plan.changed


@pytest.mark.parametrize(
    "registry, command",
    [
        ({}, "docker pull registry:2"),
        ({"image": "registry:2.8.3"}, "docker pull registry:2.8.3"),
        (
            {"image_archive": "/srv/images/registry-2.tar"},
            'docker load -i "$UPLOADS/registry-image.tar" && rm -f "$UPLOADS/registry-image.tar"',
        ),
    ],
)
def test_create_registry_gets_a_missing_image_first(registry, command):
    plan = registry_step.create_registry(docker_host(image_id=""), make_ctx(registry))

    assert plan.commands == [command]
    archive = registry.get("image_archive")
    assert plan.uploads == ([(archive, "registry-image.tar")] if archive else [])


def test_create_registry_runs_kollas_host_network_container_with_a_named_volume():
    plan = registry_step.create_registry(docker_host(), make_ctx())

    [command] = plan.commands
    assert command == (
        "docker run -d --network host -e REGISTRY_HTTP_ADDR=0.0.0.0:4000 --restart=always --name registry "
        "-v registry:/var/lib/registry -e 'REGISTRY_STORAGE_MAINTENANCE_READONLY={\"enabled\":true}' "
        f"--label {SPEC_LABEL}={spec()} registry:2"
    )
    assert plan.handler is None


def test_create_registry_bridge_runs_the_documented_container():
    ctx = make_ctx({"network": "bridge"})

    [command] = registry_step.create_registry(docker_host(), ctx).commands

    assert command == (
        f"docker run -d -p 4000:5000 --restart=always --name registry -v registry:/var/lib/registry "
        "-e 'REGISTRY_STORAGE_MAINTENANCE_READONLY={\"enabled\":true}' "
        f"--label {SPEC_LABEL}={spec(ctx, host_network=False)} registry:2"
    )


@pytest.mark.parametrize(
    "network, listens",
    [
        ("host", "--network host -e REGISTRY_HTTP_ADDR=192.0.2.10:4000 "),
        ("bridge", "-p 192.0.2.10:4000:5000 "),
    ],
)
def test_create_registry_bind_limits_where_it_listens_in_both_modes(network, listens):
    ctx = make_ctx({"network": network, "bind": REGISTRY_IP})

    [command] = registry_step.create_registry(docker_host(), ctx).commands

    assert listens in command


@pytest.mark.parametrize("network", ["host", "bridge"])
def test_create_registry_tls_and_login_work_in_both_modes(network):
    facts = docker_host(tls={"fingerprint": "AB:CD"}, files={HTPASSWD: "kolla:$2y$04$x\n"})
    ctx = make_ctx({"network": network, "tls": "self-signed", "auth": "htpasswd"})

    [command] = registry_step.create_registry(facts, ctx).commands

    for option in (
        f"-v {SERVER_CERT}:{SERVER_CERT}:ro",
        f"-v {SERVER_KEY}:{SERVER_KEY}:ro",
        f"-e REGISTRY_HTTP_TLS_CERTIFICATE={SERVER_CERT}",
        f"-e REGISTRY_HTTP_TLS_KEY={SERVER_KEY}",
        f"-v {HTPASSWD}:{HTPASSWD}:ro",
        "-e REGISTRY_AUTH=htpasswd",
    ):
        assert f" {option} " in command
    assert ("--network host -e REGISTRY_HTTP_ADDR=0.0.0.0:4000 " in command) is (network == "host")
    # The network-facing container never sees the CA, nor the folder that held it.
    assert f"{TLS_DIR}:" not in command and CA_KEY not in command and CA_DIR not in command


def test_a_tls_registry_that_mounted_the_whole_tls_folder_is_recreated_once_with_the_server_files_only():
    facts = docker_host(tls={"fingerprint": "AB:CD", "key_digest": "1f" * 32}, files={HTPASSWD: "kolla:$2y$04$x\n"})
    ctx = make_ctx({"tls": "self-signed", "auth": "htpasswd"})
    # The label a registry made before the CA had a folder of its own carries (TLS_DIR mounted whole).
    htpasswd = hashlib.sha256(facts.files[HTPASSWD].encode()).hexdigest()
    before = registry_step.registry_spec(ctx, True, IMAGE_ID, {"tls": "AB:CD", "htpasswd": htpasswd})
    old = changed(facts, container=container(before))

    plan = registry_step.create_registry(old, ctx)

    assert plan.commands[0] == "docker rm -f registry" and f"-v {SERVER_KEY}:{SERVER_KEY}:ro" in plan.commands[-1]
    now = changed(facts, container=container(registry_step.spec_of(facts, ctx)))
    assert not registry_step.create_registry(now, ctx).changed


def test_create_registry_uses_host_networking_when_daemon_json_turns_iptables_off():
    facts = docker_host(files=daemon_json(iptables=False))

    [command] = registry_step.create_registry(facts, make_ctx()).commands

    assert "--network host -e REGISTRY_HTTP_ADDR=0.0.0.0:4000 " in command
    assert "-p " not in command
    assert f"--label {SPEC_LABEL}={spec(host_network=True)} " in command


def test_create_registry_uses_host_networking_when_docker_opts_turn_the_bridge_off():
    facts = docker_host(files={DEFAULT_DOCKER: 'DOCKER_OPTS="--bridge=none"\n'})

    [command] = registry_step.create_registry(facts, make_ctx({"port": 5000})).commands

    assert "--network host -e REGISTRY_HTTP_ADDR=0.0.0.0:5000 " in command


@pytest.mark.parametrize(
    "network, daemon, host_network",
    [
        ("bridge", {"iptables": False}, False),
        ("bridge", {}, False),
        ("host", {}, True),
        ("auto", {}, True),  # an older inventory's auto: host networking now
        ("auto", {"bridge": "none"}, True),
    ],
)
def test_create_registry_network_setting(network, daemon, host_network):
    facts = docker_host(files=daemon_json(**daemon))

    [command] = registry_step.create_registry(facts, make_ctx({"network": network, "port": 5000})).commands

    assert ("--network host" in command) is host_network
    assert ("-p 5000:5000" in command) is not host_network


def test_create_registry_custom_name_volume_and_image():
    ctx = make_ctx({"name": "kolla-registry", "volume": "kolla-images", "image": "registry:2.8.3"})

    [command] = registry_step.create_registry(docker_host(), ctx).commands

    assert "--name kolla-registry " in command
    assert "-v kolla-images:/var/lib/registry " in command
    assert command.endswith(" registry:2.8.3")


def test_create_registry_same_spec_running_has_nothing_to_do():
    plan = registry_step.create_registry(docker_host(container=container(spec())), make_ctx())

    assert not plan.changed
    assert plan.notes == ["registry runs registry:2 on port 4000"]


def test_create_registry_same_spec_stopped_is_started():
    plan = registry_step.create_registry(docker_host(container=container(spec(), running=False)), make_ctx())

    assert plan.commands == ["docker start registry"]


@pytest.mark.parametrize(
    "old_spec",
    [
        None,  # the procedure's container: no label at all
        spec(image_id="sha256:" + "00" * 32),  # registry:2 has been pulled again since
        spec(host_network=False),  # the network changed
        spec(make_ctx({"port": 5000})),  # the port changed
    ],
)
def test_create_registry_different_spec_recreates_the_container(old_spec):
    plan = registry_step.create_registry(docker_host(container=container(old_spec)), make_ctx())

    assert plan.commands[0] == "docker rm -f registry"
    assert plan.commands[-1].startswith("docker run -d --network host ")
    assert len(plan.commands) == 2  # the named volume already holds the images


def test_create_registry_copies_the_procedures_anonymous_volume_into_the_named_one():
    plan = registry_step.create_registry(docker_host(container=container(None, volume=None)), make_ctx())

    assert len(plan.commands) == 3
    remove, copy, run = plan.commands
    assert remove == "docker rm -f registry"
    assert copy.startswith(
        "if ! docker volume inspect registry >/dev/null 2>&1; then docker volume create registry"
    )
    assert f"cp -a /var/lib/docker/volumes/{OLD_VOLUME}/_data/. " in copy
    assert "-v registry:/var/lib/registry" in run


def test_create_registry_bridge_network_where_docker_cannot_publish_says_so():
    facts = docker_host(files=daemon_json(bridge="none", iptables=False))

    plan = registry_step.create_registry(facts, make_ctx({"network": "bridge"}))

    assert plan.commands[0].startswith("docker run -d -p 4000:5000 ")
    assert plan.notes == [registry_step.BRIDGE_OFF]


@pytest.mark.parametrize("running", [True, False])
def test_create_registry_moves_a_bridge_published_registry_to_host_networking_keeping_its_volume(running):
    old = container(spec(make_ctx({"network": "bridge"}), host_network=False), running, network="bridge")

    plan = registry_step.create_registry(docker_host(container=old), make_ctx())

    remove, run = plan.commands  # no copy: the named volume stays, with every image
    assert remove == "docker rm -f registry"
    assert run.startswith("docker run -d --network host -e REGISTRY_HTTP_ADDR=0.0.0.0:4000 ")
    assert " -v registry:/var/lib/registry " in run
    moved = container(run.split(f"--label {SPEC_LABEL}=")[1].split()[0])
    assert not registry_step.create_registry(docker_host(container=moved), make_ctx()).changed


def test_create_registry_moves_the_procedures_registry_carrying_its_anonymous_volume_over():
    old = container(None, volume=None, network="bridge")

    remove, copy, run = registry_step.create_registry(docker_host(container=old), make_ctx()).commands

    assert remove == "docker rm -f registry"
    assert f"cp -a /var/lib/docker/volumes/{OLD_VOLUME}/_data/. " in copy
    assert run.startswith("docker run -d --network host ") and " -v registry:/var/lib/registry " in run


def test_create_registry_keeps_a_bridge_registry_when_asked_to():
    ctx = make_ctx({"network": "bridge"})
    old = container(spec(ctx, host_network=False), network="bridge")

    assert not registry_step.create_registry(docker_host(container=old), ctx).changed


def test_create_registry_corrupt_daemon_json_is_an_error():
    plan = registry_step.create_registry(docker_host(files={DAEMON_JSON: "{not json"}), make_ctx())

    assert plan.error.startswith("/etc/docker/daemon.json: not valid JSON")
    assert not plan.changed


def test_create_registry_converges_once_the_container_runs():
    ctx = make_ctx()
    facts = docker_host()
    [command] = registry_step.create_registry(facts, ctx).commands
    label = command.split(f"--label {SPEC_LABEL}=")[1].split()[0]

    second = registry_step.create_registry(changed(facts, container=container(label)), ctx)

    assert not second.changed


def test_create_registry_container_without_labels_is_recreated():
    old = container(None, volume=None)
    old["Config"]["Labels"] = None

    plan = registry_step.create_registry(docker_host(container=old), make_ctx())

    assert plan.commands[0] == "docker rm -f registry"


def test_a_writable_registry_made_before_is_recreated_read_only_once_keeping_its_volume_and_the_row_says_so():
    # The spec of the same settings as the version before made them: deletes allowed, pushes taken.
    settings = make_ctx().inventory.registry
    before = {
        "image": settings.image, "image_id": IMAGE_ID, "volume": "registry", "port": 4000, "network": "host",
        "delete": True,
    }
    old = hashlib.sha256(json.dumps(before, sort_keys=True).encode()).hexdigest()[:16]
    writable = container(old)
    writable["Config"]["Env"] = ["REGISTRY_STORAGE_DELETE_ENABLED=true", "PATH=/usr/bin:/bin"]

    plan = registry_step.create_registry(docker_host(container=writable), make_ctx())

    remove, run = plan.commands
    assert remove == "docker rm -f registry"
    assert " -v registry:/var/lib/registry " in run
    assert " -e 'REGISTRY_STORAGE_MAINTENANCE_READONLY={\"enabled\":true}' " in run
    # The read-only registry needs no deletes: the writer on the deployment host does them.
    assert "REGISTRY_STORAGE_DELETE_ENABLED" not in run
    assert plan.summary().endswith(
        "recreated read-only, keeping its images: no node can push any more; writes go through the "
        "deployment host (sync-images, prune-registry)"
    )
    label = run.split(f"--label {SPEC_LABEL}=")[1].split()[0]
    made = container(label)
    made["Config"]["Env"] = ['REGISTRY_STORAGE_MAINTENANCE_READONLY={"enabled":true}']
    assert not registry_step.create_registry(docker_host(container=made), make_ctx()).changed


def test_a_registry_left_read_only_by_an_older_prune_is_recreated_without_the_migration_note():
    left = container("0123456789abcdef-read-only")
    left["Config"]["Env"] = ['REGISTRY_STORAGE_MAINTENANCE_READONLY={"enabled":true}']

    plan = registry_step.create_registry(docker_host(container=left), make_ctx())

    assert plan.commands[0] == "docker rm -f registry" and "recreated read-only" not in plan.summary()


def test_registry_spec_changes_with_every_setting_the_container_is_made_with():
    assert (
        len({spec(), spec(host_network=False), spec(image_id="sha256:00"), spec(make_ctx({"volume": "v"}))})
        == 4
    )


# --- trust-registry (step 5) -----------------------------------------------------------------


def test_trust_registry_writes_daemon_json_and_reloads():
    plan = trust.trust_registry(docker_host(), make_ctx())

    assert plan.error is None
    assert plan.files == [
        FileChange(DAEMON_JSON, None, f'{{\n  "insecure-registries": [\n    "{REGISTRY}"\n  ]\n}}\n')
    ]
    assert plan.handler == RELOAD


def test_trust_registry_merges_into_daemon_json_keeping_other_keys():
    facts = docker_host(
        files=daemon_json(
            **{"log-driver": "journald", "insecure-registries": ["10.0.0.5:5000"], "iptables": False}
        )
    )

    plan = trust.trust_registry(facts, make_ctx())

    after = json.loads(written(plan, DAEMON_JSON))
    assert list(after) == ["log-driver", "insecure-registries", "iptables"]
    assert after == {
        "log-driver": "journald",
        "insecure-registries": ["10.0.0.5:5000", REGISTRY],
        "iptables": False,
    }
    assert plan.handler == RELOAD


def test_trust_registry_restarts_when_docker_is_not_answering():
    plan = trust.trust_registry(docker_host(docker_answers=False), make_ctx())

    assert plan.handler == RESTART


def test_trust_registry_uses_the_inventory_port():
    plan = trust.trust_registry(docker_host(), make_ctx({"port": 5000}, address="registry.lab"))

    assert json.loads(written(plan, DAEMON_JSON)) == {"insecure-registries": ["registry.lab:5000"]}


def test_trust_registry_already_trusted_changes_nothing():
    plan = trust.trust_registry(
        docker_host(files=daemon_json(**{"insecure-registries": [REGISTRY]})), make_ctx()
    )

    assert not plan.changed and plan.handler is None
    assert plan.notes == [f"{REGISTRY} already in /etc/docker/daemon.json"]


@pytest.mark.parametrize("text", ['{\n  "debug": true,\n', "[]", '{"insecure-registries": "x"}'])
def test_trust_registry_unusable_daemon_json_is_an_error_naming_it(text):
    plan = trust.trust_registry(docker_host(files={DAEMON_JSON: text}), make_ctx())

    assert plan.error.startswith("/etc/docker/daemon.json: ")
    assert plan.files == [] and plan.handler is None


PROCEDURE_OPTS = 'DOCKER_OPTS="--dns 8.8.8.8 --insecure-registry 10.0.0.5:5000"\n'


def test_trust_registry_daemon_json_method_with_docker_opts_flags_needs_repair():
    facts = docker_host(files={DEFAULT_DOCKER: PROCEDURE_OPTS})

    plan = trust.trust_registry(facts, make_ctx(docker={"config_method": "daemon-json"}))

    assert "--insecure-registry 10.0.0.5:5000" in plan.error
    assert "adding the registry to /etc/docker/daemon.json too would stop dockerd" in plan.error
    assert "--repair" in plan.error
    assert not plan.changed


# --- auto follows the method the host already uses ---------------------------------------------

# The documented procedure's steps 5-7 on Docker CE: DOCKER_OPTS, read through drop-ins.
PROCEDURE_DROPINS = {
    dc.ENV_DROPIN: dc.ENV_TEXT,
    dc.EXEC_DROPIN: "[Service]\nExecStart=\nExecStart=/usr/bin/dockerd -H fd:// $DOCKER_OPTS\n",
}
CE_READING_DOCKER_OPTS = {
    **docker_ce_host().engine("docker").service,
    "ExecStart": DOCKER_CE_EXEC_START.replace("--containerd=/run/containerd/containerd.sock", "$DOCKER_OPTS"),
    "EnvironmentFiles": READS_DEFAULT_DOCKER,
}


def procedure_node(opts: str = f'DOCKER_OPTS="--insecure-registry {REGISTRY}"\n', **changes):
    """A node set up by hand as the procedure says: DOCKER_OPTS, and a unit that reads it."""
    facts = docker_ce_host(unit=CE_READING_DOCKER_OPTS, files={DEFAULT_DOCKER: opts, **PROCEDURE_DROPINS})
    return changed(facts, **changes)


@pytest.mark.parametrize(
    "facts",
    [
        pytest.param(
            docker_host(files={DEFAULT_DOCKER: f'DOCKER_OPTS="--insecure-registry {REGISTRY}"\n'}),
            id="debian-unit",
        ),
        pytest.param(procedure_node(), id="procedure-dropins"),
        pytest.param(procedure_node('DOCKER_OPTS="--insecure-registry 192.0.2.0/24"\n'), id="cidr"),
    ],
)
def test_auto_a_node_trusting_the_registry_through_docker_opts_is_left_alone(facts):
    plan = trust.configure_target(facts, make_ctx())

    assert plan.error is None
    assert not plan.changed and plan.handler is None
    assert trust.trust_method(facts, make_ctx()) == "docker-opts"
    assert trust.trust_registry(facts, make_ctx()).notes == [f"{REGISTRY} already in DOCKER_OPTS"]


def test_auto_other_registries_in_docker_opts_get_ours_added_there_with_a_restart():
    facts = procedure_node(PROCEDURE_OPTS)

    plan = trust.configure_target(facts, make_ctx())

    assert plan.error is None
    assert [change.path for change in plan.files] == [DEFAULT_DOCKER]
    opts = ["--dns", "8.8.8.8", "--insecure-registry", "10.0.0.5:5000", "--insecure-registry", REGISTRY]
    assert dc.docker_opts(written(plan, DEFAULT_DOCKER)) == opts
    assert plan.handler == RESTART
    again = trust.configure_target(applied(facts, plan), make_ctx())
    assert not again.files and again.error is None


def test_auto_docker_opts_on_a_unit_that_does_not_read_them_yet_is_daemon_json():
    facts = docker_ce_host(files={DEFAULT_DOCKER: PROCEDURE_OPTS})

    assert trust.trust_method(facts, make_ctx()) == "daemon-json"
    plan = trust.configure_target(facts, make_ctx())
    assert [change.path for change in plan.files] == [DAEMON_JSON]
    assert plan.handler == RELOAD


def test_auto_with_repair_moves_a_docker_opts_host_to_daemon_json():
    facts = procedure_node()

    plan = trust.configure_target(facts, make_ctx(repair=True))

    assert dc.docker_opts(written(plan, DEFAULT_DOCKER)) == []
    assert json.loads(written(plan, DAEMON_JSON)) == {"insecure-registries": [REGISTRY]}
    assert plan.handler == RESTART


def test_auto_flags_and_a_daemon_json_list_together_are_refused_until_repair():
    facts = procedure_node(PROCEDURE_OPTS)
    facts.files.update(daemon_json(**{"insecure-registries": []}))

    plan = trust.trust_registry(facts, make_ctx())

    assert "lists insecure-registries too, so dockerd cannot start this way" in plan.error
    assert "--repair" in plan.error
    assert not trust.trust_registry(facts, make_ctx(repair=True)).error


UNIT_FLAG_EXEC_START = DOCKER_CE_EXEC_START.replace(" ; ignore", " --insecure-registry REG ; ignore", 1)


def unit_flag_node(registry: str):
    exec_start = UNIT_FLAG_EXEC_START.replace("REG", registry)
    return docker_ce_host(unit={**docker_ce_host().engine("docker").service, "ExecStart": exec_start})


def test_auto_flags_in_the_units_own_execstart_are_refused_with_the_fix():
    plan = trust.configure_target(unit_flag_node("10.0.0.5:5000"), make_ctx())

    assert plan.error.startswith("--insecure-registry 10.0.0.5:5000 is set in docker.service's ExecStart")
    assert f"add --insecure-registry {REGISTRY} there" in plan.error
    assert not plan.changed


def test_auto_the_units_own_flag_for_our_registry_is_left_alone():
    facts = unit_flag_node(REGISTRY)

    plan = trust.configure_target(facts, make_ctx())

    assert plan.error is None and not plan.changed
    assert trust.trust_registry(facts, make_ctx()).notes == [
        f"{REGISTRY} already trusted by dockerd's --insecure-registry flags"
    ]
    assert trust.copy_docker_unit(facts, make_ctx()).notes == [
        "not needed: the registry is trusted through docker.service's own flags"
    ]


def test_auto_tls_registry_ignores_the_method_and_keeps_a_leftover_insecure_flag_until_tls_verifies():
    ctx = replace(make_ctx({"tls": "self-signed"}), ca="CA PEM\n")
    facts = procedure_node()

    plan = trust.trust_registry(facts, ctx)

    assert trust.trust_method(facts, ctx) == "certs.d"
    assert [change.path for change in plan.files] == [f"/etc/docker/certs.d/{REGISTRY}/ca.crt"]
    assert plan.notes == [f"{REGISTRY} stays insecure in {DEFAULT_DOCKER} DOCKER_OPTS until TLS verifies from here"]


def test_trust_registry_flags_the_unit_does_not_read_are_ignored():
    facts = docker_ce_host(files={DEFAULT_DOCKER: PROCEDURE_OPTS})

    plan = trust.trust_registry(facts, make_ctx())

    assert plan.error is None
    assert [change.path for change in plan.files] == [DAEMON_JSON]


def test_trust_registry_repair_moves_the_flags_into_daemon_json():
    facts = docker_host(
        files={DEFAULT_DOCKER: "# site options\n" + PROCEDURE_OPTS, **daemon_json(debug=True)}
    )

    plan = trust.trust_registry(facts, make_ctx(repair=True))

    assert plan.error is None
    cleaned = written(plan, DEFAULT_DOCKER)
    assert cleaned.startswith("# site options\n")
    assert dc.docker_opts(cleaned) == ["--dns", "8.8.8.8"]
    assert json.loads(written(plan, DAEMON_JSON)) == {
        "debug": True,
        "insecure-registries": ["10.0.0.5:5000", REGISTRY],
    }
    assert plan.handler == RESTART


def test_trust_registry_repair_cannot_edit_the_unit_itself():
    exec_start = DOCKER_CE_EXEC_START.replace(" ; ignore", " --insecure-registry x:1 ; ignore", 1)
    unit = {**docker_host().engine("docker").service, "ExecStart": exec_start}

    plan = trust.trust_registry(docker_host(unit=unit), make_ctx(repair=True))

    assert plan.error.startswith("--insecure-registry x:1 is set in docker.service's ExecStart")
    assert "remove it there by hand" in plan.error
    assert not plan.changed


def test_trust_registry_repair_with_flags_in_the_unit_and_docker_opts_is_an_error():
    exec_start = (
        docker_host()
        .engine("docker")
        .service["ExecStart"]
        .replace("$DOCKER_OPTS", "--insecure-registry x:1 $DOCKER_OPTS")
    )
    facts = docker_host(
        unit={**docker_host().engine("docker").service, "ExecStart": exec_start},
        files={DEFAULT_DOCKER: PROCEDURE_OPTS},
    )

    plan = trust.trust_registry(facts, make_ctx(repair=True))

    assert plan.error is not None and "docker.service" in plan.error


def test_trust_registry_repair_of_the_procedures_own_flag_lists_the_registry_once():
    facts = docker_host(files={DEFAULT_DOCKER: f'DOCKER_OPTS="--insecure-registry {REGISTRY}"\n'})

    plan = trust.trust_registry(facts, make_ctx(repair=True))

    assert json.loads(written(plan, DAEMON_JSON)) == {"insecure-registries": [REGISTRY]}


def test_trust_registry_docker_opts_edits_etc_default_docker():
    plan = trust.trust_registry(docker_host(), make_ctx(docker={"config_method": "docker-opts"}))

    assert [change.path for change in plan.files] == [DEFAULT_DOCKER]
    after = written(plan, DEFAULT_DOCKER)
    assert dc.docker_opts(after) == ["--insecure-registry", REGISTRY]
    assert '#DOCKER_OPTS="--dns 8.8.8.8 --dns 8.8.4.4"' in after  # the packaged comments stay
    assert plan.handler == RESTART


def test_trust_registry_auto_uses_docker_opts_before_docker_1_12():
    unit = {**docker_host().engine("docker").service, "ExecStart": DOCKER_1_11_EXEC_START}

    plan = trust.trust_registry(docker_host("1.11.2", unit=unit), make_ctx())

    assert [change.path for change in plan.files] == [DEFAULT_DOCKER]


def test_trust_registry_docker_opts_refuses_daemon_json_registries():
    facts = docker_host(
        files={**docker_host().files, **daemon_json(**{"insecure-registries": ["10.0.0.5:5000"]})}
    )

    plan = trust.trust_registry(facts, make_ctx(docker={"config_method": "docker-opts"}))

    assert plan.error.startswith("/etc/docker/daemon.json already sets insecure-registries")
    assert "docker.config_method daemon-json" in plan.error
    assert not plan.changed


def test_trust_registry_docker_opts_refuses_an_empty_daemon_json_list_too():
    facts = docker_host(files={**docker_host().files, **daemon_json(**{"insecure-registries": []})})

    plan = trust.trust_registry(facts, make_ctx(docker={"config_method": "docker-opts"}))

    assert plan.error is not None and not plan.changed


def test_trust_registry_docker_opts_already_trusted_changes_nothing():
    facts = docker_host(files={DEFAULT_DOCKER: f'DOCKER_OPTS="--debug --insecure-registry {REGISTRY}"\n'})

    plan = trust.trust_registry(facts, make_ctx(docker={"config_method": "docker-opts"}))

    assert not plan.changed
    assert plan.notes == [f"{REGISTRY} already in DOCKER_OPTS"]


@pytest.mark.parametrize(
    "facts, ctx",
    [
        (docker_host(), make_ctx()),
        (docker_host(files=daemon_json(debug=True)), make_ctx()),
        (docker_host(files={DEFAULT_DOCKER: PROCEDURE_OPTS}), make_ctx(repair=True)),
        (docker_host(), make_ctx(docker={"config_method": "docker-opts"})),
        (
            docker_host(files={DEFAULT_DOCKER: 'DOCKER_OPTS="--dns 8.8.8.8"\n'}),
            make_ctx(docker={"config_method": "docker-opts"}),
        ),
    ],
    ids=["no-file", "merge", "repair", "docker-opts", "docker-opts-edit"],
)
def test_trust_registry_second_pass_changes_nothing(facts, ctx):
    first = trust.trust_registry(facts, ctx)

    second = trust.trust_registry(applied(facts, first), ctx)

    assert first.changed and first.error is None
    assert not second.changed and second.error is None


@pytest.mark.parametrize(
    "method, version, expected",
    [
        ("auto", "20.10.24+dfsg1", "daemon-json"),
        ("auto", "1.12.0", "daemon-json"),
        ("auto", "1.11.2", "docker-opts"),
        ("daemon-json", "20.10.24+dfsg1", "daemon-json"),
        ("auto", "", "daemon-json"),
        ("docker-opts", "24.0.7", "docker-opts"),
        ("daemon-json", "1.11.2", "daemon-json"),
    ],
)
def test_trust_method(method, version, expected):
    assert trust.trust_method(docker_host(version), make_ctx(docker={"config_method": method})) == expected


# --- copy-docker-unit and add-docker-opts (steps 6 and 7) -----------------------------------------

DOCKER_OPTS = make_ctx(docker={"config_method": "docker-opts"})


@pytest.mark.parametrize("planner", [trust.copy_docker_unit, trust.add_docker_opts])
def test_unit_steps_are_not_needed_with_daemon_json(planner):
    plan = planner(docker_ce_host(), make_ctx())

    assert not plan.changed
    assert plan.notes == ["not needed: the registry is trusted through daemon.json"]


def test_copy_docker_unit_not_needed_when_the_unit_reads_etc_default_docker():
    plan = trust.copy_docker_unit(docker_host(), DOCKER_OPTS)

    assert not plan.changed
    assert plan.notes == ["not needed: docker.service already reads /etc/default/docker"]


def test_copy_docker_unit_adds_an_environment_file_dropin():
    plan = trust.copy_docker_unit(docker_ce_host(), DOCKER_OPTS)

    assert plan.files == [
        FileChange(dc.ENV_DROPIN, None, "[Service]\nEnvironmentFile=-/etc/default/docker\n")
    ]
    assert plan.handler == RESTART


def test_copy_docker_unit_converges():
    facts = docker_ce_host()
    first = trust.copy_docker_unit(facts, DOCKER_OPTS)

    assert not trust.copy_docker_unit(applied(facts, first), DOCKER_OPTS).changed


def test_add_docker_opts_not_needed_when_execstart_passes_docker_opts():
    plan = trust.add_docker_opts(docker_host(), DOCKER_OPTS)

    assert not plan.changed
    assert plan.notes == ["not needed: dockerd's ExecStart already passes $DOCKER_OPTS"]


def test_add_docker_opts_writes_an_execstart_dropin():
    plan = trust.add_docker_opts(docker_ce_host(), DOCKER_OPTS)

    assert plan.files == [
        FileChange(
            dc.EXEC_DROPIN,
            None,
            "[Service]\nExecStart=\nExecStart=/usr/bin/dockerd -H fd:// "
            "--containerd=/run/containerd/containerd.sock $DOCKER_OPTS\n",
        )
    ]
    assert plan.handler == RESTART


def test_add_docker_opts_without_a_known_execstart_uses_docker_daemon_before_1_12():
    facts = docker_host("1.11.2", unit={"ActiveState": "inactive", "ExecStart": ""})

    plan = trust.add_docker_opts(facts, make_ctx())

    assert written(plan, dc.EXEC_DROPIN).endswith("ExecStart=/usr/bin/docker daemon -H fd:// $DOCKER_OPTS\n")


def test_add_docker_opts_converges_once_systemd_reloaded_the_unit():
    facts = docker_ce_host()
    first = trust.add_docker_opts(facts, DOCKER_OPTS)
    reloaded = applied(facts, first)
    exec_start = DOCKER_CE_EXEC_START.replace(" ; ignore", " $DOCKER_OPTS ; ignore", 1)
    reloaded.engine("docker").service["ExecStart"] = exec_start

    assert not trust.add_docker_opts(reloaded, DOCKER_OPTS).changed


def test_add_docker_opts_converges_before_the_handler_reloads_systemd():
    facts = docker_ce_host()
    first = trust.add_docker_opts(facts, DOCKER_OPTS)

    second = trust.add_docker_opts(applied(facts, first), DOCKER_OPTS)

    assert not second.changed


# --- restart-docker (step 8) -----------------------------------------------------------------


@pytest.mark.parametrize(
    "pending, action",
    [
        (f"reload {DAEMON_JSON} -\n", RELOAD),
        (
            f"restart {DAEMON_JSON} /var/backups/kolla-registry/etc_docker_daemon.json.20240108T100000Z\n",
            RESTART,
        ),
        (f"reload {DAEMON_JSON} -\nrestart {DEFAULT_DOCKER} -\n", RESTART),
        (f"reload {dc.ENV_DROPIN} -\n", RESTART),
    ],
)
def test_restart_docker_runs_the_handler_for_pending_changes(pending, action):
    facts = docker_host(files={PENDING: pending, **daemon_json(**{"insecure-registries": [REGISTRY]})})

    plan = trust.restart_docker(facts, make_ctx())

    assert plan.fire == Handler(REGISTRY, insecure=True) and plan.commands == []
    assert plan.changed
    assert plan.notes == [f"Docker {action}"]


@pytest.mark.parametrize(
    "files, expect",
    [
        (daemon_json(**{"insecure-registries": [REGISTRY]}), REGISTRY),
        ({DEFAULT_DOCKER: f'DOCKER_OPTS="--insecure-registry {REGISTRY}"\n'}, REGISTRY),
        (daemon_json(debug=True), None),  # e.g. only a MountFlags drop-in changed
        ({}, None),
    ],
)
def test_restart_docker_checks_the_registry_only_where_it_is_configured(files, expect):
    facts = docker_host(files={PENDING: f"restart {KOLLA_DROPIN} -\n", **files})

    plan = trust.restart_docker(facts, make_ctx())

    assert plan.fire == Handler(expect, insecure=True)


def test_restart_docker_without_a_registry_address_does_not_check_it():
    facts = docker_host(
        files={PENDING: f"reload {DAEMON_JSON} -\n", **daemon_json(**{"insecure-registries": [":4000"]})}
    )

    plan = trust.restart_docker(facts, make_ctx(address=""))

    assert plan.fire == Handler(None, insecure=True)


def test_restart_docker_nothing_pending_leaves_docker_running():
    plan = trust.restart_docker(docker_host(files={PENDING: "\n"}), make_ctx())

    assert not plan.changed
    assert plan.notes == ["nothing changed: Docker left running (pid 612)"]


def test_restart_docker_in_check_mode_says_what_would_happen():
    plan = trust.restart_docker(docker_host(), make_ctx(notified=RESTART))

    assert not plan.changed
    assert plan.notes == ["Docker would restart after the changes above"]


# --- whole runs --------------------------------------------------------------------------------


def converged_deploy_host():
    ctx = make_ctx()
    facts = docker_host(files=daemon_json(**{"insecure-registries": [REGISTRY]}))
    facts.registry.container = container(registry_step.registry_spec(ctx, True, IMAGE_ID))
    return facts, ctx


@pytest.mark.parametrize("planner", deploy.DEPLOY_STEPS, ids=lambda planner: planner.__name__)
def test_a_converged_deploy_host_needs_nothing(planner):
    facts, ctx = converged_deploy_host()

    plan = planner(facts, ctx)

    assert plan.error is None
    assert not plan.changed and plan.handler is None


def test_every_step_on_a_docker_host_then_a_second_pass_changes_nothing():
    ctx = make_ctx()
    facts = docker_host(files={KOLLA_DROPIN: "[Service]\nMountFlags=shared\n"})
    plans = []
    for planner in deploy.DEPLOY_STEPS[:-1]:
        plan = planner(facts, ctx)
        assert plan.error is None, plan.error
        plans.append(plan)
        facts = applied(facts, plan)
        if plan.step == "create-registry":
            [command] = plan.commands
            facts.registry.container = container(command.split(f"--label {SPEC_LABEL}=")[1].split()[0])

    assert [plan.step for plan in plans if plan.changed] == [
        "install-docker",
        "create-registry",
        "trust-registry",
    ]
    assert [planner(facts, ctx).changed for planner in deploy.DEPLOY_STEPS] == [False] * len(deploy.DEPLOY_STEPS)


@pytest.mark.parametrize("planner", trust.TARGET_STEPS, ids=lambda planner: planner.__name__)
def test_a_target_trusting_the_registry_needs_nothing(planner):
    facts = docker_ce_host(files={**daemon_json(**{"insecure-registries": [REGISTRY]})}, image_id="")

    plan = planner(facts, make_ctx())

    assert not plan.changed and plan.error is None


# A deployment host that is also a target: deploy-host's trust steps and configure-targets
# must leave it with the same files, so that either run after the other changes nothing.
DEPLOY_TRUST_STEPS = (trust.trust_registry, trust.copy_docker_unit, trust.add_docker_opts)
SECURE_CTX = replace(make_ctx({"tls": "self-signed"}), ca="-----BEGIN CERTIFICATE-----\nCA\n")


def by_deploy_host(facts, ctx):
    for planner in DEPLOY_TRUST_STEPS:
        plan = planner(facts, ctx)
        assert plan.error is None, plan.error
        facts = applied(facts, plan)
    return facts


def by_configure_targets(facts, ctx):
    plan = trust.configure_target(facts, ctx)
    assert plan.error is None, plan.error
    return applied(facts, plan)


@pytest.mark.parametrize(
    "facts, ctx",
    [
        pytest.param(docker_host(), make_ctx(), id="new-daemon-json"),
        pytest.param(docker_host(files=daemon_json(iptables=False, debug=True)), make_ctx(), id="merge"),
        pytest.param(procedure_node(PROCEDURE_OPTS), make_ctx(), id="docker-opts-host"),
        pytest.param(
            docker_ce_host(), make_ctx(docker={"config_method": "docker-opts"}), id="docker-opts-setting"
        ),
        pytest.param(docker_host(files={CA_CERT: SECURE_CTX.ca}), SECURE_CTX, id="tls"),
    ],
)
def test_the_deployment_host_as_a_target_gets_the_same_files_from_both_tasks(facts, ctx):
    deployed, targeted = by_deploy_host(facts, ctx), by_configure_targets(facts, ctx)

    assert deployed.files == targeted.files != facts.files
    assert not trust.configure_target(deployed, ctx).changed
    assert not any(planner(targeted, ctx).changed for planner in DEPLOY_TRUST_STEPS)


@pytest.mark.parametrize(
    "version, checked", [("20.10.24+dfsg1", False), ("23.0.0", True), ("26.1.5+dfsg1", True)]
)
def test_a_new_daemon_json_is_validated_by_dockerd_where_it_can(version, checked):
    plan = trust.trust_registry(docker_host(version), make_ctx())

    [change] = plan.files
    assert (change.checker == "dockerd --validate --config-file") is checked


def test_trust_counts_a_cidr_entry_as_trusting_the_registry():
    facts = docker_host(files={DAEMON_JSON: '{"insecure-registries": ["192.0.2.0/24"]}\n'})
    plan = trust.trust_registry(facts, make_ctx())

    assert plan.files == [] and plan.error is None
