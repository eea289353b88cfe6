"""pull: the node's pull script (run here against a fake docker), its marks, and the node's recap row."""

from __future__ import annotations

import os
import subprocess

import pytest

from fabfile.engines.base import MISSING, PRESENT, PULLED
from fabfile.images import pull_plan as pull
from fabfile.images.model import Image
from fabfile.images.pull_plan import Pulled
from fabfile.model.marks import MARK
from fabfile.model.outcome import CHANGED, FAILED, OK
from fabfile.tasks.pull import pulling_engine

REGISTRY = "192.0.2.10:4000"
KEYSTONE, NOVA, GLANCE = (
    Image(f"openstack.kolla/{name}", "zed") for name in ("keystone", "nova-api", "glance-api")
)
WANTED = {image.at(REGISTRY): image for image in (KEYSTONE, NOVA, GLANCE)}

# A docker whose pulls: keystone is up to date, nova-api fails once (timeout) then works,
# glance-api is unknown to the registry. Each call is logged with the time it started.
FAKE_DOCKER = """#!/bin/sh
echo "$*" >> "$LOG"
case "$2" in
  *keystone*) echo "zed: Pulling from openstack.kolla/keystone"; echo "Digest: sha256:k"
              echo "Status: Image is up to date for $2" ;;
  *nova-api*) if [ ! -e "$LOG.nova" ]; then touch "$LOG.nova"; echo "net/http: TLS handshake timeout" >&2; exit 1; fi
              echo "Digest: sha256:n"; echo "Status: Downloaded newer image for $2" ;;
  *) echo "Error response from daemon: manifest for $2 not found: manifest unknown" >&2; exit 1 ;;
esac
"""

from .factories import host_facts


@pytest.fixture
def docker_env(tmp_path):
    (tmp_path / "docker").write_text(FAKE_DOCKER)
    (tmp_path / "docker").chmod(0o755)
    (tmp_path / "sleep").write_text("#!/bin/sh\n")  # retries without the wait
    (tmp_path / "sleep").chmod(0o755)
    return {**os.environ, "PATH": f"{tmp_path}:{os.environ['PATH']}", "LOG": str(tmp_path / "log")}


def test_pull_script_pulls_each_image_retries_transient_errors_and_marks_each(docker_env, tmp_path):
    script = pull.pull_script(list(WANTED), per_node=2, retries=3)

    done = subprocess.run(["sh", "-c", script], env=docker_env, capture_output=True, text=True, check=True)

    marks = sorted(line for line in done.stdout.splitlines() if line.startswith(MARK))
    assert marks == sorted(
        [
            f"{MARK} {PRESENT} {KEYSTONE.at(REGISTRY)} sha256:k",
            f"{MARK} {PULLED} {NOVA.at(REGISTRY)} sha256:n",
            (
                f"{MARK} failed {GLANCE.at(REGISTRY)} Error response from daemon: manifest for "
                f"{GLANCE.at(REGISTRY)} not found: manifest unknown"
            ),
        ]
    )
    calls = (tmp_path / "log").read_text().splitlines()
    # nova-api twice (one retry); glance-api once: a missing manifest is not retried.
    assert sorted(calls) == sorted(f"pull {ref}" for ref in [*WANTED, NOVA.at(REGISTRY)])


def test_pull_script_gives_up_after_its_retries(docker_env, tmp_path):
    (tmp_path / "docker").write_text('#!/bin/sh\necho "$*" >> "$LOG"; echo "502 Bad Gateway" >&2; exit 1\n')

    done = subprocess.run(
        ["sh", "-c", pull.pull_script([KEYSTONE.at(REGISTRY)], per_node=1, retries=2)],
        env=docker_env,
        capture_output=True,
        text=True,
        check=True,
    )

    assert done.stdout.strip() == f"{MARK} failed {KEYSTONE.at(REGISTRY)} 502 Bad Gateway"
    assert len((tmp_path / "log").read_text().splitlines()) == 3


def test_check_script_only_looks(tmp_path):
    (tmp_path / "docker").write_text('#!/bin/sh\ncase "$3" in *keystone*) exit 0 ;; esac; exit 1\n')
    (tmp_path / "docker").chmod(0o755)
    env = {**os.environ, "PATH": f"{tmp_path}:{os.environ['PATH']}"}

    done = subprocess.run(
        ["sh", "-c", pull.check_script(list(WANTED))], env=env, capture_output=True, text=True, check=True
    )

    assert pull.parse_pulls(done.stdout, WANTED) == [
        Pulled(KEYSTONE, PRESENT),
        Pulled(NOVA, MISSING),
        Pulled(GLANCE, MISSING),
    ]


# A podman that holds keystone already (the same ID before and after its pull), pulls
# nova-api anew, and finds no glance-api; inspect gives the ID and the digest.
FAKE_PODMAN = """#!/bin/sh
echo "$*" >> "$LOG"
case "$1 $2" in
  "image inspect") ref=$5; case "$ref" in *keystone*) ;; *nova*) [ -e "$LOG.nova" ] || exit 125 ;; *) exit 125 ;; esac
                   case "$4" in *Digest*) echo "sha256:${ref##*/}" ;; *) echo "id-${ref##*/}" ;; esac ;;
  "pull -q") ref=$3; case "$ref" in
      *keystone*) echo "id-${ref##*/}" ;;
      *nova*) touch "$LOG.nova"; echo "id-${ref##*/}" ;;
      *) echo "Error: initializing source docker://$ref: reading manifest zed in $ref: manifest unknown" >&2; exit 125 ;;
    esac ;;
esac
"""


def test_podman_pulls_each_image_and_tells_present_from_pulled(docker_env, tmp_path):
    (tmp_path / "podman").write_text(FAKE_PODMAN)
    (tmp_path / "podman").chmod(0o755)
    script = pull.pull_script(list(WANTED), per_node=1, retries=1, cli="podman")

    done = subprocess.run(["sh", "-c", script], env=docker_env, capture_output=True, text=True, check=True)

    assert [(p.image, p.status) for p in pull.parse_pulls(done.stdout, WANTED)] == [
        (KEYSTONE, PRESENT),
        (NOVA, PULLED),
        (GLANCE, "failed"),
    ]
    assert f"{MARK} {PULLED} {NOVA.at(REGISTRY)} sha256:nova-api:zed" in done.stdout
    assert "docker" not in script


@pytest.mark.parametrize(
    "docker, podman, asked, pulls",
    [
        ("26.1.5", "", "", "docker"),
        ("", "5.4.2", "", "podman"),
        ("20.10.24", "4.3.1", "", "docker"),
        ("20.10.24", "4.3.1", "podman", "podman"),
        ("26.1.5", "", "podman", ""),
    ],
)
def test_the_engine_that_pulls(docker, podman, asked, pulls):
    assert pulling_engine(host_facts(docker_version=docker, podman_version=podman), asked) == pulls


def test_podman_check_script_looks_in_podmans_images():
    assert 'podman image inspect "$1"' in pull.check_script(list(WANTED), "podman")


def test_parse_pulls_keeps_the_wanted_order_and_fails_what_got_no_answer():
    output = (
        f"noise\n{MARK} {PULLED} {NOVA.at(REGISTRY)} sha256:n\n{MARK} {PRESENT} {KEYSTONE.at(REGISTRY)}\n"
    )

    assert pull.parse_pulls(output, WANTED) == [
        Pulled(KEYSTONE, PRESENT, ""),
        Pulled(NOVA, PULLED, "sha256:n"),
        Pulled(GLANCE, FAILED, "no answer from the node"),
    ]


@pytest.mark.parametrize(
    "pulls, check, status, message",
    [
        ([Pulled(KEYSTONE, PRESENT), Pulled(NOVA, PRESENT)], False, OK, "holds 2/2"),
        ([Pulled(KEYSTONE, PULLED), Pulled(NOVA, PRESENT)], False, CHANGED, "pulled 1; holds 2/2"),
        (
            [Pulled(KEYSTONE, PRESENT), Pulled(NOVA, MISSING)],
            True,
            CHANGED,
            f"holds 1/2; would pull {NOVA.name}",
        ),
        (
            [Pulled(KEYSTONE, PULLED), Pulled(GLANCE, FAILED, "manifest unknown")],
            False,
            FAILED,
            f"holds 1/2; failed {GLANCE.name}: manifest unknown",
        ),
        (
            [
                Pulled(image, FAILED, "http: server gave HTTP response to HTTPS client")
                for image in WANTED.values()
            ],
            False,
            FAILED,
            (
                f"holds 0/3; failed 3 images ({KEYSTONE.name}, ...): http: server gave HTTP response to HTTPS "
                "client (run fab configure-targets)"
            ),
        ),
        (
            [
                Pulled(KEYSTONE, FAILED, "timeout"),
                Pulled(NOVA, FAILED, "timeout"),
                Pulled(GLANCE, FAILED, "gone"),
            ],
            False,
            FAILED,
            f"holds 0/3; failed {KEYSTONE.name}, {NOVA.name}: timeout; {GLANCE.name}: gone",
        ),
    ],
)
def test_node_outcome(pulls, check, status, message):
    outcome = pull.pull_outcome("node1", pulls, check)

    assert (outcome.host, outcome.step, outcome.status, outcome.message) == (
        "node1",
        "pull-images",
        status,
        message,
    )
