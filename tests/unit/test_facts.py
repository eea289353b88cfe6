"""facts.parse: the facts script's output in, HostFacts out."""

from __future__ import annotations

import base64
import json
import subprocess
from dataclasses import replace

import pytest

from fabfile.actions.deploy import deploy_sections
from fabfile.engines.docker import config as dc
from fabfile.engines.docker.facts import VERSION, dropins
from fabfile.engines.docker.paths import DAEMON_JSON, DEFAULT_DOCKER, DROPIN_DIR
from fabfile.facts import base as host_facts
from fabfile.facts import system
from fabfile.model.facts import EngineFacts, HostFacts
from fabfile.model.marks import MARK, sections
from fabfile.model.paths import PENDING
from fabfile.registry import facts as registry_facts

from .factories import DEBIAN_EXEC_START, IMAGE_ID, PACKAGED_DEFAULT_DOCKER, container, make_ctx

DEPLOY_SECTIONS = deploy_sections(make_ctx())


class facts:
    """The deployment host's facts: every section, as deploy-host gathers them."""

    DROPIN_DIR = DROPIN_DIR

    @staticmethod
    def parse(text: str) -> HostFacts:
        return host_facts.parse(text, DEPLOY_SECTIONS + (system.ADDRESSES,))


DEBIAN12_OS_RELEASE = """\
PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"
NAME="Debian GNU/Linux"
VERSION_ID="12"
VERSION="12 (bookworm)"
VERSION_CODENAME=bookworm
ID=debian
HOME_URL="https://www.debian.org/"
SUPPORT_URL="https://www.debian.org/support"
BUG_REPORT_URL="https://bugs.debian.org/"
"""

DAEMON_JSON_TEXT = '{\n  "log-driver": "json-file",\n  "insecure-registries": ["10.0.0.5:5000"]\n}\n'
KOLLA_DROPIN = f"{facts.DROPIN_DIR}/kolla.conf"
PENDING_TEXT = f"reload {DAEMON_JSON} /var/backups/kolla-registry/etc_docker_daemon.json.20240108T100000Z\n"


def output(*sections: tuple[str, str]) -> str:
    """What the facts script prints: ``printf '\\n<MARK> %s\\n' NAME`` then the command's output."""
    return "".join(f"\n{MARK} {name}\n{body}" for name, body in sections)


def file_section(path: str, text: str | bytes) -> tuple[str, str]:
    data = text.encode() if isinstance(text, str) else text
    return (f"file {path}", base64.b64encode(data).decode() + "\n")


FRESH_DEBIAN = output(
    ("os-release", DEBIAN12_OS_RELEASE),
    ("kernel", "6.1.0-18-amd64\n"),
    ("addresses", "192.0.2.10 10.0.3.15 \n"),
    ("dockerd", ""),
    ("docker-server", ""),
    ("docker-unit", "MainPID=0\nActiveState=inactive\nFragmentPath=\nExecStart=\nEnvironmentFiles=\n"),
    ("pep668", "True\n"),
    ("pip", ""),
    (
        "packages",
        (
            "adduser installed\napt installed\ncurl installed\ngcc-12 config-files\nlibssl3 installed\n"
            "python3 installed\npython3-pip not-installed\n"
        ),
    ),
    ("apt-lists-age", "86400\n"),
    ("run-propagation", "shared\n"),
    ("container", ""),
    ("image", ""),
)

DOCKER_HOST = output(
    ("os-release", DEBIAN12_OS_RELEASE),
    ("kernel", "6.1.0-18-amd64\n"),
    ("addresses", "192.0.2.10 172.17.0.1 \n"),
    ("dockerd", "Docker version 20.10.24+dfsg1, build 297e128\n"),
    ("docker-server", "20.10.24+dfsg1\n"),
    (
        "docker-unit",
        (
            "MainPID=612\nActiveState=active\nFragmentPath=/lib/systemd/system/docker.service\n"
            f"ExecStart={DEBIAN_EXEC_START}\nEnvironmentFiles=/etc/default/docker (ignore_errors=yes)\n"
        ),
    ),
    ("pep668", "True\n"),
    ("pip", "pip 23.0.1 from /usr/lib/python3/dist-packages/pip (python 3.11)\n"),
    ("packages", "docker.io installed\ncurl installed\npython3-pip installed\n"),
    ("apt-lists-age", "312\n"),
    ("run-propagation", "shared\n"),
    file_section(DAEMON_JSON, DAEMON_JSON_TEXT),
    file_section(DEFAULT_DOCKER, PACKAGED_DEFAULT_DOCKER),
    file_section(PENDING, PENDING_TEXT),
    file_section(KOLLA_DROPIN, "[Service]\nMountFlags=shared\n"),
    ("container", json.dumps([container(spec="0123456789abcdef")], indent=4) + "\n"),
    ("image", IMAGE_ID + "\n"),
)


def test_fresh_debian_without_docker():
    parsed = facts.parse(FRESH_DEBIAN)

    assert parsed.system.os["ID"] == "debian" and parsed.system.os["VERSION_ID"] == "12"
    assert parsed.system.os["HOME_URL"] == "https://www.debian.org/"
    assert parsed.system.os_name == "Debian GNU/Linux 12 (bookworm)"
    assert parsed.system.kernel == "6.1.0-18-amd64"
    assert parsed.system.addresses == ["192.0.2.10", "10.0.3.15"]
    assert parsed.engine("docker").version == ""
    assert parsed.engine("docker").answers is False
    assert parsed.engine("docker").service == {
        "MainPID": "0",
        "ActiveState": "inactive",
        "FragmentPath": "",
        "ExecStart": "",
        "EnvironmentFiles": "",
    }
    assert parsed.system.externally_managed is True
    assert parsed.system.pip_version == ""
    assert parsed.system.packages == {"adduser", "apt", "curl", "libssl3", "python3"}
    assert parsed.system.apt_lists_age == 86400
    assert parsed.system.run_propagation == "shared"
    assert parsed.files == {} and dropins(parsed) == {}
    assert parsed.registry.container is None
    assert parsed.registry.image_id == ""


def test_host_with_docker_running_a_registry():
    parsed = facts.parse(DOCKER_HOST)

    assert parsed.engine("docker").version == "20.10.24+dfsg1"
    assert dc.version(parsed.engine("docker").version) == (20, 10, 24)
    assert parsed.engine("docker").answers is True
    service = parsed.engine("docker").service
    assert service["ActiveState"] == "active" and service["MainPID"] == "612"
    assert service["ExecStart"] == DEBIAN_EXEC_START
    assert dc.exec_start_argv(service["ExecStart"]) == [
        "/usr/sbin/dockerd",
        "-H",
        "fd://",
        "$DOCKER_OPTS",
    ]
    assert service["EnvironmentFiles"] == "/etc/default/docker (ignore_errors=yes)"
    assert parsed.system.pip_version == "23.0.1"
    assert parsed.system.packages == {"docker.io", "curl", "python3-pip"}
    assert parsed.system.apt_lists_age == 312
    assert parsed.files == {
        DAEMON_JSON: DAEMON_JSON_TEXT,
        DEFAULT_DOCKER: PACKAGED_DEFAULT_DOCKER,
        PENDING: PENDING_TEXT,
        KOLLA_DROPIN: "[Service]\nMountFlags=shared\n",
    }
    assert dropins(parsed) == {KOLLA_DROPIN: "[Service]\nMountFlags=shared\n"}
    assert dc.load_daemon_json(parsed.files[DAEMON_JSON])["insecure-registries"] == ["10.0.0.5:5000"]
    assert parsed.registry.container["Name"] == "/registry"
    assert parsed.registry.container["State"]["Running"] is True
    assert parsed.registry.container["Config"]["Labels"] == {"kolla-registry.spec": "0123456789abcdef"}
    assert parsed.registry.container["Mounts"][0]["Name"] == "registry"
    assert parsed.registry.image_id == IMAGE_ID


def test_docker_installed_but_not_answering_keeps_the_binarys_version():
    parsed = facts.parse(
        output(("dockerd", "Docker version 20.10.24+dfsg1, build 297e128\n"), ("docker-server", ""))
    )

    assert parsed.engine("docker").version == "20.10.24"
    assert parsed.engine("docker").answers is False


def test_docker_before_1_12_has_no_dockerd():
    parsed = facts.parse(output(("dockerd", "Docker version 1.11.2, build b9f10c9\n")))

    assert parsed.engine("docker").version == "1.11.2"


def test_no_container_is_none():
    assert facts.parse(output(("container", "[]\n"))).registry.container is None


def test_not_json_container_output_is_none():
    assert facts.parse(output(("container", "Error: No such object: registry\n"))).registry.container is None


def test_output_before_the_first_section_is_ignored():
    parsed = facts.parse("Welcome to deploy1!\nkernel\n" + output(("kernel", "5.10.0-28-amd64\n")))

    assert parsed.system.kernel == "5.10.0-28-amd64"


def test_nothing_gathered_gives_empty_facts():
    parsed = facts.parse("")

    # Reading an engine's facts makes its (empty) entry: every engine read is empty, and the rest is too.
    assert all(engine == EngineFacts() for engine in parsed.engines.values())
    assert replace(parsed, engines={}) == HostFacts()
    assert HostFacts().system.os_name == "unknown OS"


def test_os_name_falls_back_to_id():
    assert facts.parse(output(("os-release", "ID=alpine\nVERSION_ID=3.19.1\n"))).system.os_name == "alpine"


def test_a_file_that_is_not_utf8_is_still_read():
    parsed = facts.parse(output(file_section(DEFAULT_DOCKER, b'DOCKER_OPTS="--label owner=J\xf6rg"\n')))

    assert parsed.files[DEFAULT_DOCKER] == 'DOCKER_OPTS="--label owner=J\ufffdrg"\n'
    assert parsed.unreadable == {DEFAULT_DOCKER: "not UTF-8 text"}


def test_the_script_prints_every_section_its_parsers_read():
    wanted = DEPLOY_SECTIONS + (system.ADDRESSES,)
    done = subprocess.run(["sh", "-c", host_facts.script(wanted)], capture_output=True, text=True, check=False)

    assert done.returncode == 0
    printed = set(sections(done.stdout))
    for name in ("os-release", "kernel", "addresses", "dockerd", "docker-server", "docker-unit", "pep668"):
        assert name in printed
    for name in ("pip", "packages", "apt-lists-age", "run-propagation", "container", "image"):
        assert name in printed
    assert facts.parse(done.stdout).system.kernel == subprocess.run(
        ["uname", "-r"], capture_output=True, text=True, check=True
    ).stdout.strip()


def test_a_task_gathers_only_the_sections_it_asks_for():
    script = host_facts.script([system.KERNEL])

    assert "s kernel;" in script and "dpkg-query" not in script and "docker inspect" not in script


def test_container_and_image_names_are_quoted():
    script = host_facts.script(
        [registry_facts.container("my registry; rm -rf /"), registry_facts.image("registry:2")]
    )

    assert "docker inspect 'my registry; rm -rf /'" in script
    assert "--format '{{.Id}}' registry:2" in script


def test_files_that_are_not_regular_are_named_not_read(tmp_path):
    (tmp_path / "dir").mkdir()
    (tmp_path / "text").write_text("x\n")
    section = host_facts.files(str(tmp_path / "dir"), str(tmp_path / "text"), str(tmp_path / "absent"))
    done = subprocess.run(["sh", "-c", host_facts.script([section])], capture_output=True, text=True, check=True)

    parsed = host_facts.parse(done.stdout, [section])

    assert parsed.files == {str(tmp_path / "text"): "x\n"}
    assert parsed.unreadable == {str(tmp_path / "dir"): "not a regular file"}


@pytest.mark.parametrize("shell", ["sh", "bash"])
def test_the_script_is_valid_shell(shell):
    script = host_facts.script(DEPLOY_SECTIONS)
    result = subprocess.run([shell, "-n"], input=script, capture_output=True, text=True, check=False)

    assert result.returncode == 0, result.stderr


def test_a_file_name_with_shell_syntax_is_not_read(tmp_path):
    odd = tmp_path / "x';touch PWNED;'.conf"
    odd.write_text("[Service]\n")
    section = host_facts.files(str(odd))
    done = subprocess.run(["sh", "-c", host_facts.script([section])], capture_output=True, text=True, check=True)

    parsed = host_facts.parse(done.stdout, [section])

    assert parsed.files == {} and parsed.unreadable == {str(odd): "a file name this tool does not edit"}


def test_a_file_two_sections_ask_for_is_read_once_and_whole(tmp_path):
    path = tmp_path / "password"
    path.write_text("s3cret\n")
    first, second = host_facts.files(str(path)), host_facts.files(str(path), str(tmp_path / "other"))
    done = subprocess.run(
        ["sh", "-c", host_facts.script([first, second])], capture_output=True, text=True, check=True
    )

    assert host_facts.parse(done.stdout, [first, second]).files[str(path)] == "s3cret\n"


# A curl that answers dockerd's /_ping with its headers as $HEADERS says (or fails when it is empty),
# and a docker and a dockerd that log each call and answer as Docker 20.10 would.
PING_CURL = '#!/bin/sh\n[ -n "$HEADERS" ] || exit 7\nprintf "$HEADERS"\n'
LOGGED_DOCKER = '#!/bin/sh\necho "$(basename "$0") $*" >> "$LOG"\necho 20.10.24+dfsg1\n'


@pytest.mark.parametrize(
    "headers, version, calls",
    [
        ("HTTP/1.1 200 OK\r\nServer: Docker/27.5.1 (linux)\r\n\r\n", "27.5.1", []),
        ("HTTP/2 200\r\nserver: Docker/27.5.1 (linux)\r\n\r\n", "27.5.1", []),
        ("", "20.10.24+dfsg1", ["docker version --format {{.Server.Version}}"]),
    ],
)
def test_dockers_version_is_read_from_its_socket_and_the_cli_runs_only_without_an_answer(tmp_path, headers, version, calls):
    for name, text in (("curl", PING_CURL), ("docker", LOGGED_DOCKER), ("dockerd", LOGGED_DOCKER)):
        (tmp_path / name).write_text(text)
        (tmp_path / name).chmod(0o755)
    env = {"PATH": f"{tmp_path}:/usr/bin:/bin", "LOG": str(tmp_path / "log"), "HEADERS": headers}
    done = subprocess.run(["sh", "-c", host_facts.script([VERSION])], env=env, capture_output=True, text=True, check=True, timeout=30)

    parsed = host_facts.parse(done.stdout, [VERSION])
    assert parsed.engine("docker").version == version and parsed.engine("docker").answers
    logged = (tmp_path / "log").read_text().splitlines() if (tmp_path / "log").exists() else []
    assert logged == calls
