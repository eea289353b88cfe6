"""dockerconfig: file texts and unit properties in, file texts and decisions out."""

from __future__ import annotations

import json
import subprocess

import pytest

from fabfile.engines.docker import config as dc

from .factories import DEBIAN_EXEC_START, DOCKER_1_11_EXEC_START, DOCKER_CE_EXEC_START, READS_DEFAULT_DOCKER

R = "192.0.2.10:4000"
# The exact example the brief gives, as `systemctl show -p ExecStart` prints it.
SYSTEMCTL_EXEC_START = (
    "{ path=/usr/sbin/dockerd ; argv[]=/usr/sbin/dockerd -H fd:// "
    "--containerd=/run/containerd/containerd.sock $DOCKER_OPTS ; ignore_errors=no ; "
    "start_time=[n/a] ; stop_time=[n/a] ; pid=0 ; code=(null) ; status=0/0 }"
)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("20.10.24+dfsg1", (20, 10, 24)),
        ("17.06.2-ce", (17, 6, 2)),
        ("1.9.1", (1, 9, 1)),
        ("  24.0.7\n", (24, 0, 7)),
        ("1.12", (1, 12)),
        ("", ()),
        (None, ()),
        ("unknown", ()),
    ],
)
def test_version(text, expected):
    assert dc.version(text) == expected


def test_version_tuples_compare_with_the_thresholds():
    assert dc.version("1.9.1") < dc.MIN_DOCKER <= dc.version("1.10.0")
    assert dc.version("1.11.2") < dc.DOCKERD_SINCE <= dc.version("1.12.0")
    assert dc.version("18.06.3-ce") < dc.MOUNTFLAGS_BREAKS_SINCE <= dc.version("18.09.0")


# --- daemon.json ---------------------------------------------------------------------------


@pytest.mark.parametrize("text", [None, "", "  \n\t\n"])
def test_load_daemon_json_absent_or_blank_is_empty(text):
    assert dc.load_daemon_json(text) == {}


def test_load_daemon_json_returns_the_object():
    assert dc.load_daemon_json('{"iptables": false, "log-opts": {"max-size": "10m"}}') == {
        "iptables": False,
        "log-opts": {"max-size": "10m"},
    }


def test_load_daemon_json_corrupt_names_the_file_and_line():
    with pytest.raises(dc.ConfigError) as caught:
        dc.load_daemon_json('{\n  "iptables": false,\n}\n')

    message = str(caught.value)
    assert message.startswith("/etc/docker/daemon.json: not valid JSON (line 3")
    assert "left as it is" in message


@pytest.mark.parametrize("text", ["[]", '["192.0.2.10:4000"]', "42", '"text"', "null"])
def test_load_daemon_json_refuses_what_is_not_an_object(text):
    with pytest.raises(dc.ConfigError, match=r"^/etc/docker/daemon\.json: expected a JSON object"):
        dc.load_daemon_json(text)


def test_with_insecure_registries_creates_the_file():
    text = dc.with_insecure_registries(None, [R])

    assert json.loads(text) == {"insecure-registries": [R]}
    assert text.endswith("}\n")


def test_with_insecure_registries_keeps_every_other_key_and_their_order():
    before = json.dumps(
        {
            "log-driver": "json-file",
            "log-opts": {"max-size": "50m", "max-file": "5"},
            "iptables": False,
            "insecure-registries": ["10.0.0.5:5000"],
            "storage-driver": "overlay2",
        }
    )

    after = json.loads(dc.with_insecure_registries(before, [R]))

    assert list(after) == ["log-driver", "log-opts", "iptables", "insecure-registries", "storage-driver"]
    assert after == {**json.loads(before), "insecure-registries": ["10.0.0.5:5000", R]}
    assert list(after["log-opts"]) == ["max-size", "max-file"]


def test_with_insecure_registries_adds_the_key_last():
    after = json.loads(dc.with_insecure_registries('{"iptables": false, "bridge": "none"}', [R]))

    assert list(after) == ["iptables", "bridge", "insecure-registries"]


def test_with_insecure_registries_adds_only_the_missing_and_keeps_list_order():
    before = '{"insecure-registries": ["b:5000", "a:5000"]}'

    after = json.loads(dc.with_insecure_registries(before, ["a:5000", R, "b:5000", "c:5000"]))

    assert after["insecure-registries"] == ["b:5000", "a:5000", R, "c:5000"]


@pytest.mark.parametrize(
    "text",
    [
        '{"insecure-registries": ["192.0.2.10:4000"]}',
        '{\n\t"debug": true,\n\t"insecure-registries": ["10.0.0.5:5000", "192.0.2.10:4000"]\n}',
    ],
)
def test_with_insecure_registries_returns_the_same_text_when_already_trusted(text):
    result = dc.with_insecure_registries(text, [R])

    assert result is text


def test_with_insecure_registries_refuses_a_non_list():
    with pytest.raises(dc.ConfigError, match=r"^/etc/docker/daemon\.json: insecure-registries is not a list"):
        dc.with_insecure_registries('{"insecure-registries": "192.0.2.10:4000"}', [R])


def test_with_insecure_registries_refuses_corrupt_json():
    with pytest.raises(dc.ConfigError, match="/etc/docker/daemon.json: not valid JSON"):
        dc.with_insecure_registries('{"insecure-registries": [', [R])


def test_with_insecure_registries_never_writes_a_duplicate():
    after = json.loads(dc.with_insecure_registries("{}", [R, R]))

    assert after["insecure-registries"] == [R]


# --- DOCKER_OPTS -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, expected",
    [
        (None, []),
        ("", []),
        ('#DOCKER_OPTS="--dns 8.8.8.8 --dns 8.8.4.4"\n', []),
        ('DOCKER_OPTS="--dns 8.8.8.8 --dns 8.8.4.4"\n', ["--dns", "8.8.8.8", "--dns", "8.8.4.4"]),
        ("DOCKER_OPTS='-H tcp://0.0.0.0:2375'\n", ["-H", "tcp://0.0.0.0:2375"]),
        ("DOCKER_OPTS=--debug\n", ["--debug"]),
        ('export DOCKER_OPTS="--debug"\n', ["--debug"]),
        ('  DOCKER_OPTS="--debug"\n', ["--debug"]),
        ('DOCKER_OPTS="--dns 1.1.1.1"  # resolver\n', ["--dns", "1.1.1.1"]),
        ('DOCKER_OPTS=""\n', []),
        (f'DOCKER_OPTS="--dns 8.8.8.8"\nDOCKER_OPTS="--insecure-registry {R}"\n', ["--insecure-registry", R]),
        ('DOCKER_OPTS="--insecure-registry=10.0.0.5:5000"\n', ["--insecure-registry=10.0.0.5:5000"]),
    ],
)
def test_docker_opts_reads_the_last_line(text, expected):
    assert dc.docker_opts(text) == expected


@pytest.mark.parametrize(
    "args, expected",
    [
        (["--insecure-registry", R], [R]),
        ([f"--insecure-registry={R}"], [R]),
        (
            [
                "-H",
                "fd://",
                "--insecure-registry",
                "a:5000",
                "--dns",
                "8.8.8.8",
                "--insecure-registry=b:5000",
            ],
            ["a:5000", "b:5000"],
        ),
        (["--insecure-registry"], []),
        (["--registry-mirror", "http://mirror:5000", "--insecure-registries", "x"], []),
        ([], []),
    ],
)
def test_flag_registries(args, expected):
    assert dc.flag_registries(args) == expected


def test_with_docker_opts_registry_creates_the_line():
    text = dc.with_docker_opts_registry(None, R)

    assert text == f"DOCKER_OPTS='--insecure-registry {R}'\n"
    assert dc.docker_opts(text) == ["--insecure-registry", R]


def test_with_docker_opts_registry_edits_the_line_and_keeps_other_options_and_comments():
    before = (
        "# Docker options\n"
        '#DOCKER_OPTS="--dns 8.8.4.4"\n'
        'DOCKER_OPTS="--dns 8.8.8.8 --debug"\n'
        "export TMPDIR=/srv\n"
    )

    after = dc.with_docker_opts_registry(before, R)

    lines = after.splitlines()
    assert lines[0] == "# Docker options"
    assert lines[1] == '#DOCKER_OPTS="--dns 8.8.4.4"'
    assert lines[3] == "export TMPDIR=/srv"
    assert sum(line.startswith("DOCKER_OPTS=") for line in lines) == 1
    assert dc.docker_opts(after) == ["--dns", "8.8.8.8", "--debug", "--insecure-registry", R]


def test_the_procedures_append_lost_options_that_editing_keeps():
    before = 'DOCKER_OPTS="--dns 8.8.8.8"\n'
    # Step 5 of the procedure: echo "DOCKER_OPTS=\"--insecure-registry ...\"" >> /etc/default/docker
    appended = before + f'DOCKER_OPTS="--insecure-registry {R}"\n'

    assert dc.docker_opts(appended) == ["--insecure-registry", R]
    assert dc.docker_opts(dc.with_docker_opts_registry(before, R)) == [
        "--dns",
        "8.8.8.8",
        "--insecure-registry",
        R,
    ]


def test_with_docker_opts_registry_edits_only_the_last_line():
    before = 'DOCKER_OPTS="--dns 8.8.8.8"\nDOCKER_OPTS="--debug"\n'

    after = dc.with_docker_opts_registry(before, R)

    assert after.splitlines()[0] == 'DOCKER_OPTS="--dns 8.8.8.8"'
    assert dc.docker_opts(after) == ["--debug", "--insecure-registry", R]


def test_with_docker_opts_registry_adds_to_other_registries():
    after = dc.with_docker_opts_registry('DOCKER_OPTS="--insecure-registry 10.0.0.5:5000"\n', R)

    assert dc.flag_registries(dc.docker_opts(after)) == ["10.0.0.5:5000", R]


@pytest.mark.parametrize(
    "text",
    [f'DOCKER_OPTS="--insecure-registry {R}"\n', f'DOCKER_OPTS="--debug --insecure-registry={R}"\n'],
)
def test_with_docker_opts_registry_returns_the_same_text_when_already_trusted(text):
    assert dc.with_docker_opts_registry(text, R) is text


def test_the_edited_file_is_read_back_by_a_shell(tmp_path):
    """Upstart and sysvinit source /etc/default/docker: the edited line must survive sh."""
    path = tmp_path / "docker"
    path.write_text(dc.with_docker_opts_registry('DOCKER_OPTS="--dns 8.8.8.8"\n', R))

    out = subprocess.run(
        ["sh", "-c", '. "$1"; for a in $DOCKER_OPTS; do echo "$a"; done', "sh", str(path)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout

    assert out.split("\n")[:-1] == ["--dns", "8.8.8.8", "--insecure-registry", R]


def test_without_flag_registries_drops_both_flag_forms_and_keeps_the_rest():
    before = (
        "# kept\n"
        f'DOCKER_OPTS="--dns 8.8.8.8 --insecure-registry {R} --insecure-registry=10.0.0.5:5000 --debug"\n'
        "export http_proxy=http://proxy:3128/\n"
    )

    after = dc.without_flag_registries(before)

    assert dc.docker_opts(after) == ["--dns", "8.8.8.8", "--debug"]
    assert after.splitlines()[0] == "# kept"
    assert after.splitlines()[2] == "export http_proxy=http://proxy:3128/"


def test_without_flag_registries_only_flag_leaves_an_empty_line():
    after = dc.without_flag_registries(f'DOCKER_OPTS="--insecure-registry {R}"\n')

    assert after == "DOCKER_OPTS=''\n"
    assert dc.docker_opts(after) == []


@pytest.mark.parametrize(
    "text", [None, "", 'DOCKER_OPTS="--dns 8.8.8.8"\n', '#DOCKER_OPTS="--insecure-registry x"\n']
)
def test_without_flag_registries_returns_the_same_text_without_flags(text):
    assert dc.without_flag_registries(text) is text


# --- the unit ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "exec_start, expected",
    [
        (
            SYSTEMCTL_EXEC_START,
            [
                "/usr/sbin/dockerd",
                "-H",
                "fd://",
                "--containerd=/run/containerd/containerd.sock",
                "$DOCKER_OPTS",
            ],
        ),
        (
            DOCKER_CE_EXEC_START,
            ["/usr/bin/dockerd", "-H", "fd://", "--containerd=/run/containerd/containerd.sock"],
        ),
        (DOCKER_1_11_EXEC_START, ["/usr/bin/docker", "daemon", "-H", "fd://", "$DOCKER_OPTS"]),
        ("", []),
        ("garbage", []),
    ],
)
def test_exec_start_argv(exec_start, expected):
    assert dc.exec_start_argv(exec_start) == expected


DEBIAN_ARGV = dc.exec_start_argv(DEBIAN_EXEC_START)
CE_ARGV = dc.exec_start_argv(DOCKER_CE_EXEC_START)


@pytest.mark.parametrize(
    "argv, environment_files, dropins, expected",
    [
        (DEBIAN_ARGV, READS_DEFAULT_DOCKER, {}, True),
        (["/usr/bin/dockerd", "${DOCKER_OPTS}"], READS_DEFAULT_DOCKER, {}, True),
        (DEBIAN_ARGV, "", {}, False),
        (DEBIAN_ARGV, "", {dc.ENV_DROPIN: dc.ENV_TEXT}, True),
        (DEBIAN_ARGV, "/etc/sysconfig/docker (ignore_errors=yes)", {}, False),
        (CE_ARGV, READS_DEFAULT_DOCKER, {}, False),
        (CE_ARGV, "", {dc.ENV_DROPIN: dc.ENV_TEXT}, False),
    ],
)
def test_unit_reads_docker_opts(argv, environment_files, dropins, expected):
    assert dc.unit_reads_docker_opts(argv, environment_files, dropins) is expected


def test_effective_flags_add_docker_opts_when_the_unit_reads_them():
    default = f'DOCKER_OPTS="--insecure-registry {R}"\n'
    argv = dc.exec_start_argv(SYSTEMCTL_EXEC_START)

    assert dc.effective_flags(argv, default, True) == [
        "-H",
        "fd://",
        "--containerd=/run/containerd/containerd.sock",
        "--insecure-registry",
        R,
    ]
    assert dc.effective_flags(argv, default, False) == [
        "-H",
        "fd://",
        "--containerd=/run/containerd/containerd.sock",
    ]
    assert dc.effective_flags([], None, True) == []


@pytest.mark.parametrize(
    "daemon, flags, expected",
    [
        ({"iptables": False}, [], True),
        ({"bridge": "none"}, [], True),
        ({}, ["--iptables=false"], True),
        ({}, ["--iptables", "false"], True),
        ({}, ["--bridge=none"], True),
        ({}, ["-b", "none"], True),
        ({"iptables": True, "bridge": "docker0"}, ["-H", "fd://"], False),
        ({}, ["--iptables=true"], False),
        ({}, [], False),
    ],
)
def test_bridge_or_iptables_off(daemon, flags, expected):
    assert dc.bridge_or_iptables_off(daemon, flags) is expected


def test_mountflags_dropins_finds_only_active_shared_lines():
    dropins = {
        f"{dc.DROPIN_DIR}/zz-kolla.conf": dc.MOUNTFLAGS_TEXT,
        f"{dc.DROPIN_DIR}/limits.conf": "[Service]\nLimitNOFILE=1048576\n",
        f"{dc.DROPIN_DIR}/commented.conf": "[Service]\n#MountFlags=shared\n",
        f"{dc.DROPIN_DIR}/slave.conf": "[Service]\nMountFlags=slave\n",
        f"{dc.DROPIN_DIR}/a-spaced.conf": "[Service]\nLimitNPROC=infinity\n  MountFlags = shared \n",
    }

    assert dc.mountflags_dropins(dropins) == [
        f"{dc.DROPIN_DIR}/a-spaced.conf",
        f"{dc.DROPIN_DIR}/zz-kolla.conf",
    ]


@pytest.mark.parametrize(
    "text, expected",
    [
        (dc.MOUNTFLAGS_TEXT, None),
        ("# written by hand\n[Service]\nMountFlags=shared\n\n", None),
        ("[Service]\nMountFlags=shared\nLimitNOFILE=1048576\n", "[Service]\nLimitNOFILE=1048576\n"),
    ],
)
def test_without_mountflags(text, expected):
    assert dc.without_mountflags(text) == expected


@pytest.mark.parametrize(
    "argv, version, command",
    [
        (CE_ARGV, (24, 0, 7), "/usr/bin/dockerd -H fd:// --containerd=/run/containerd/containerd.sock"),
        (DEBIAN_ARGV, (20, 10, 24), "/usr/sbin/dockerd -H fd://"),
        ([], (1, 13, 1), "/usr/bin/dockerd -H fd://"),
        ([], (1, 12, 0), "/usr/bin/dockerd -H fd://"),
        ([], (1, 11, 2), "/usr/bin/docker daemon -H fd://"),
        ([], (1, 10, 3), "/usr/bin/docker daemon -H fd://"),
    ],
)
def test_exec_dropin_text(argv, version, command):
    assert dc.exec_dropin_text(argv, version) == f"[Service]\nExecStart=\nExecStart={command} $DOCKER_OPTS\n"


@pytest.mark.parametrize(
    "entries, trusted",
    [
        (["192.0.2.10:4000"], True),
        (["http://192.0.2.10:4000"], True),
        (["https://192.0.2.10:4000/"], True),
        (["192.0.2.0/24"], True),
        (["10.0.0.0/8", "192.0.0.0/16"], True),
        (["192.0.2.10:5000"], False),
        (["198.51.100.0/24"], False),
        (["192.0.2.10"], False),
        (["not a cidr/x"], False),
        ([], False),
    ],
)
def test_trusts_registries_cidr_blocks_and_schemes(entries, trusted):
    assert dc.trusts(entries, "192.0.2.10:4000") is trusted


def test_a_cidr_that_covers_the_registry_adds_no_redundant_entry():
    text = '{"insecure-registries": ["192.0.2.0/24"]}\n'
    assert dc.with_insecure_registries(text, ["192.0.2.10:4000"]) == text


def test_an_unbalanced_quote_in_docker_opts_names_the_file():
    with pytest.raises(
        dc.ConfigError, match=r"^/etc/default/docker: DOCKER_OPTS cannot be read \(No closing quotation\)"
    ):
        dc.docker_opts('DOCKER_OPTS="--insecure-registry x\n')


def test_removing_the_last_insecure_registry_keeps_an_empty_list_that_a_reload_applies():
    text = '{"insecure-registries": ["192.0.2.10:4000"], "debug": true}'
    assert json.loads(dc.without_insecure_registry(text, "192.0.2.10:4000")) == {
        "insecure-registries": [],
        "debug": True,
    }
