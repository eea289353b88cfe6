"""pull: the node's pull script (run here against a fake docker), what a node holds, the plan from
digests, its marks, and the node's row (through the engine, with stand-in hosts)."""

from __future__ import annotations

import base64
import json
import os
import socket
import subprocess
from dataclasses import replace

import pytest

from fabfile.actions.pull import PullImages, RegistryDigests
from fabfile.engines.base import PRESENT, PULLED
from fabfile.engines.docker.engine import DOCKER
from fabfile.engines.docker.facts import HELD_IMAGES as DOCKER_HELD
from fabfile.engines.docker.paths import DOCKER_SOCKET
from fabfile.engines.podman.engine import PODMAN
from fabfile.engines.podman.facts import HELD_IMAGES as PODMAN_HELD
from fabfile.facts import base as facts_base
from fabfile.images import pull_plan as pull
from fabfile.images.model import Image
from fabfile.images.pull_plan import Pulled
from fabfile.images.wanted import every_host_wants
from fabfile.model.context import Modes
from fabfile.model.marks import MARK
from fabfile.model.outcome import CHANGED, FAILED, OK

from .factories import StandInRun, docker_host, host_facts, make_ctx, podman_host, request_of, run_stand_ins

REGISTRY = "192.0.2.10:4000"
KEYSTONE, NOVA, GLANCE = (
    Image(f"openstack.kolla/{name}", "zed") for name in ("keystone", "nova-api", "glance-api")
)
IMAGES = [KEYSTONE, NOVA, GLANCE]
WANTED = {image.at(REGISTRY): image for image in IMAGES}
K_DIGEST, N_DIGEST, G_DIGEST = ("sha256:" + letter * 64 for letter in "abc")
DIGESTS = {KEYSTONE: K_DIGEST, NOVA: N_DIGEST, GLANCE: G_DIGEST}

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


@pytest.fixture
def docker_env(tmp_path):
    (tmp_path / "docker").write_text(FAKE_DOCKER)
    (tmp_path / "docker").chmod(0o755)
    (tmp_path / "sleep").write_text("#!/bin/sh\n")  # retries without the wait
    (tmp_path / "sleep").chmod(0o755)
    return {**os.environ, "PATH": f"{tmp_path}:{os.environ['PATH']}", "LOG": str(tmp_path / "log")}


def sh(script: str, env: dict, socket_path: str = "/nonexistent/docker.sock") -> subprocess.CompletedProcess:
    """The script under sh; dockerd's socket moved to ``socket_path`` (by default none: the CLI's pulls)."""
    script = script.replace(DOCKER_SOCKET, socket_path)
    return subprocess.run(["sh", "-c", script], env=env, capture_output=True, text=True, check=True, timeout=60)


# dockerd's API as curl shows it: keystone up to date, nova-api reset once (curl fails) then pulled,
# glance-api unknown (404 and a message), cinder-api an error inside the stream. Each call's argv logged,
# and any header file's content.
FAKE_CURL = """#!/bin/sh
echo "$*" >> "$LOG"
for a; do case $a in @*) cat "${a#@}" >> "$LOG.headers" ;; esac; done
for a; do case $a in *fromImage=*) ref=${a#*fromImage=} ;; esac; done
case $ref in
  *keystone*) printf '{"status":"Pulling from openstack.kolla/keystone"}\r\n{"status":"Digest: sha256:k"}\r\n'
              printf '{"status":"Status: Image is up to date for %s"}\r\n' "$ref" ;;
  *nova-api*) if [ ! -e "$LOG.nova" ]; then touch "$LOG.nova"; echo "curl: (56) Recv failure: Connection reset by peer" >&2; exit 56; fi
              printf '{"status":"Digest: sha256:n"}\r\n{"status":"Status: Downloaded newer image for %s"}\r\n' "$ref" ;;
  *glance*) printf '{"message":"manifest for %s not found: manifest unknown: manifest unknown"}\n' "$ref" ;;
  *) printf '{"status":"Pulling fs layer"}\r\n{"errorDetail":{"message":"unauthorized: authentication required"},"error":"unauthorized: authentication required"}\r\n' ;;
esac
"""
CINDER = Image("openstack.kolla/cinder-api", "zed")


@pytest.fixture
def api_env(docker_env, tmp_path):
    """docker_env with a fake curl, and a real (silent) unix socket where dockerd's would be."""
    (tmp_path / "curl").write_text(FAKE_CURL)
    (tmp_path / "curl").chmod(0o755)
    listening = socket.socket(socket.AF_UNIX)
    listening.bind(str(tmp_path / "docker.sock"))
    yield docker_env
    listening.close()


def test_pulls_go_to_dockerds_api_and_each_reads_as_the_cli_s_did(api_env, tmp_path):
    refs = [*WANTED, CINDER.at(REGISTRY)]

    done = sh(DOCKER.pull_script(refs, per_node=2, retries=3), api_env, str(tmp_path / "docker.sock"))

    marks = sorted(line for line in done.stdout.splitlines() if line.startswith(MARK))
    assert marks == sorted(
        [
            f"{MARK} {PRESENT} {KEYSTONE.at(REGISTRY)} sha256:k",
            f"{MARK} {PULLED} {NOVA.at(REGISTRY)} sha256:n",
            f"{MARK} failed {GLANCE.at(REGISTRY)} manifest for {GLANCE.at(REGISTRY)} not found: manifest unknown: manifest unknown",
            f"{MARK} failed {CINDER.at(REGISTRY)} unauthorized: authentication required",
        ]
    )
    calls = (tmp_path / "log").read_text().splitlines()
    # nova-api twice (a reset connection is tried again); a missing manifest and a refused login once each.
    assert sorted(call.rsplit("fromImage=", 1)[1] for call in calls) == sorted([*refs, NOVA.at(REGISTRY)])
    assert not (tmp_path / "docker").exists() or "pull" not in (tmp_path / "log").read_text().split()


def test_with_a_login_dockerd_gets_it_from_a_private_file_never_argv(api_env, tmp_path):
    ctx = replace(make_ctx({"tls": "self-signed", "auth": "htpasswd"}), password="s3cret-pw")

    sh(DOCKER.pull_script([KEYSTONE.at(REGISTRY)], per_node=1, retries=0, ctx=ctx), api_env, str(tmp_path / "docker.sock"))

    [call] = (tmp_path / "log").read_text().splitlines()
    assert "s3cret-pw" not in call and "-H @/" in call
    header = (tmp_path / "log.headers").read_text()
    sent = json.loads(base64.urlsafe_b64decode(header.split("X-Registry-Auth: ", 1)[1].strip()))
    assert sent["password"] == "s3cret-pw"
    assert not os.path.exists(call.split("-H @", 1)[1].split()[0])  # removed once the pulls are done


# --- the pull script ---------------------------------------------------------------------------


def test_without_curl_or_dockerds_socket_the_cli_pulls_retries_transient_errors_and_marks_each(docker_env, tmp_path):
    script = DOCKER.pull_script(list(WANTED), per_node=2, retries=3)

    done = sh(script, docker_env)

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

    done = sh(DOCKER.pull_script([KEYSTONE.at(REGISTRY)], per_node=1, retries=2), docker_env)

    assert done.stdout.strip() == f"{MARK} failed {KEYSTONE.at(REGISTRY)} 502 Bad Gateway"
    assert len((tmp_path / "log").read_text().splitlines()) == 3


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
    script = PODMAN.pull_script(list(WANTED), per_node=1, retries=1)

    done = sh(script, docker_env)

    assert [(p.image, p.status) for p in pull.parse_pulls(done.stdout, WANTED)] == [
        (KEYSTONE, PRESENT),
        (NOVA, PULLED),
        (GLANCE, "failed"),
    ]
    assert f"{MARK} {PULLED} {NOVA.at(REGISTRY)} sha256:nova-api:zed" in done.stdout
    assert "docker" not in script


# --- what a node holds (read with the facts: looking pulls nothing) ------------------------------


def test_docker_s_held_images_are_read_by_looking_only(tmp_path):
    (tmp_path / "docker").write_text(
        '#!/bin/sh\necho "$*" >> "$LOG"\n'
        f"echo '{KEYSTONE.at(REGISTRY)} {K_DIGEST}'\n"
        f"echo '{NOVA.at(REGISTRY)} <none>'\n"
        "echo '<none>:<none> <none>'\n"
    )
    (tmp_path / "docker").chmod(0o755)
    env = {**os.environ, "PATH": f"{tmp_path}:{os.environ['PATH']}", "LOG": str(tmp_path / "log")}

    done = sh(facts_base.script([DOCKER_HELD]), env)
    held = facts_base.parse(done.stdout, [DOCKER_HELD]).engine("docker").images

    assert held == {KEYSTONE.at(REGISTRY): [K_DIGEST], NOVA.at(REGISTRY): []}
    assert [call.split()[0] for call in (tmp_path / "log").read_text().splitlines()] == ["images"]


def test_podman_s_held_images_are_read_from_podman_s_own_list(tmp_path):
    listed = [
        {"Names": [KEYSTONE.at(REGISTRY)], "RepoDigests": [f"{REGISTRY}/openstack.kolla/keystone@{K_DIGEST}"]},
        {"Names": None, "RepoDigests": []},
    ]
    (tmp_path / "podman").write_text(f"#!/bin/sh\necho \"$*\" >> \"$LOG\"\necho '{json.dumps(listed)}'\n")
    (tmp_path / "podman").chmod(0o755)
    env = {**os.environ, "PATH": f"{tmp_path}:{os.environ['PATH']}", "LOG": str(tmp_path / "log")}

    done = sh(facts_base.script([PODMAN_HELD]), env)

    assert facts_base.parse(done.stdout, [PODMAN_HELD]).engine("podman").images == {KEYSTONE.at(REGISTRY): [K_DIGEST]}
    assert (tmp_path / "log").read_text().split() == ["images", "--format", "json"]


# --- which engine pulls, and what the plan pulls -------------------------------------------------


@pytest.mark.parametrize(
    "docker, podman, asked, pulls",
    [
        ("26.1.5", "", "", "docker"),
        ("", "5.4.2", "", "podman"),
        ("20.10.24", "4.3.1", "", "docker"),
        ("20.10.24", "4.3.1", "podman", "podman"),
        ("26.1.5", "", "podman", None),
        ("", "", "", None),
    ],
)
def test_the_engine_that_pulls(docker, podman, asked, pulls):
    engine = pull.pulling_engine(host_facts(docker_version=docker, podman_version=podman), asked)

    assert (engine.name if engine else None) == pulls


def held(**images: str) -> dict[str, list[str]]:
    """Docker's images: a name of ``IMAGES`` -> the digest the node holds it under."""
    by_name = {image.path.rsplit("/", 1)[1]: image for image in IMAGES}
    return {by_name[name].at(REGISTRY): [digest] for name, digest in images.items()}


def plan_for(facts, digests=DIGESTS, modes: Modes | None = None, engine: str = "", **registry):
    ctx = replace(make_ctx(registry=registry or None), modes=modes or Modes())
    return pull.pull_planner(pull.PullOrder(every_host_wants(IMAGES), digests, per_node=3, retries=3, engine=engine))(facts, ctx)


def test_a_node_pulls_only_what_it_lacks_or_holds_under_another_digest():
    facts = docker_host(docker_images=held(keystone=K_DIGEST, **{"nova-api": "sha256:" + "f" * 64}))

    plan = plan_for(facts)

    [job] = plan.jobs
    assert job.diff == f"+ {NOVA.at(REGISTRY)}\n+ {GLANCE.at(REGISTRY)}\n"
    assert KEYSTONE.at(REGISTRY) not in job.script and NOVA.at(REGISTRY) in job.script
    assert plan.data == {"images": 3, "held": 1, "engine": "docker"}


def test_an_image_whose_registry_digest_is_unknown_is_pulled():
    facts = docker_host(docker_images=held(keystone=K_DIGEST, **{"nova-api": N_DIGEST, "glance-api": G_DIGEST}))

    plan = plan_for(facts, digests={KEYSTONE: K_DIGEST, NOVA: N_DIGEST})

    assert [line for line in plan.jobs[0].diff.splitlines()] == [f"+ {GLANCE.at(REGISTRY)}"]


def test_a_node_holding_everything_under_the_registry_s_digests_has_nothing_to_do():
    facts = docker_host(docker_images=held(keystone=K_DIGEST, **{"nova-api": N_DIGEST, "glance-api": G_DIGEST}))

    plan = plan_for(facts)

    assert not plan.changed and plan.notes == ["holds 3/3"]


def test_podman_s_images_are_compared_when_podman_pulls():
    facts = podman_host(podman_images={KEYSTONE.at(REGISTRY): ["sha256:" + "9" * 64, K_DIGEST]})

    plan = plan_for(facts)

    assert plan.data["engine"] == "podman" and plan.data["held"] == 1
    assert "podman pull" in plan.jobs[0].script and "docker pull" not in plan.jobs[0].script


def test_a_login_comes_before_the_pulls_and_its_password_never_on_a_command_line():
    facts = docker_host()
    ctx = replace(make_ctx(registry={"tls": "self-signed", "auth": "htpasswd"}), password="pa55word")

    [job] = pull.pull_planner(pull.PullOrder(every_host_wants(IMAGES), DIGESTS, 3, 3))(facts, ctx).jobs

    assert job.script.index("docker login") < job.script.index("docker pull")
    assert "pa55word" not in job.script


@pytest.mark.parametrize(
    ("files", "entry"),
    [
        ({"/etc/docker/daemon.json": '{"insecure-registries": ["10.0.0.0/8", "192.0.2.0/24"]}'}, "192.0.2.0/24"),
        ({"/etc/docker/daemon.json": '{"insecure-registries": ["http://192.0.2.10:4000"]}'}, "http://192.0.2.10:4000"),
    ],
)
def test_no_login_goes_to_an_engine_that_treats_the_tls_registry_as_insecure(files, entry):
    facts = docker_host(files=files)
    ctx = replace(make_ctx(registry={"tls": "self-signed", "auth": "htpasswd"}), password="pa55word")

    plan = pull.pull_planner(pull.PullOrder(every_host_wants(IMAGES), DIGESTS, 3, 3))(facts, ctx)

    assert plan.jobs == [] and entry in plan.error
    assert plan.error.endswith("no login sent; run fab configure-targets first")


@pytest.mark.parametrize(
    "facts, engine, error",
    [
        (docker_host(), "podman", "--engine podman: not installed on this node"),
        (host_facts(), "", "neither Docker nor Podman is installed"),
    ],
)
def test_a_node_without_the_engine_fails_with_the_fix(facts, engine, error):
    assert error in plan_for(facts, engine=engine).error


def test_the_registry_s_digests_are_asked_once_for_every_image_and_read_from_the_answer():
    ctx = make_ctx()
    action = RegistryDigests(IMAGES)
    [section] = action.sections(ctx)
    answered = {
        "manifests": [
            {"status": 200, "digest": K_DIGEST, "size": 900},
            {"status": 404, "digest": "", "error": "HTTP 404"},
            {"status": 200, "digest": G_DIGEST},
        ]
    }
    facts = host_facts()
    section.parse(facts_base.Texts({section.name: json.dumps(answered)}), facts)

    assert request_of(section.shell) == {
        "manifests": [["http://192.0.2.10:4000", image.path, image.tag] for image in IMAGES]
    }
    assert action.found(facts, ctx) == (
        {KEYSTONE: K_DIGEST, GLANCE: G_DIGEST},
        {},
        {KEYSTONE: 900},  # what the registry holds, for the largest first
    )


def test_the_digests_are_asked_only_once_the_registry_s_address_is_known():
    unknown = replace(make_ctx(), registry_address="")

    assert RegistryDigests(IMAGES).sections(unknown) == ()
    assert [section.name for section in RegistryDigests(IMAGES).sections(make_ctx())] == ["query-manifests"]


def test_the_upstreams_digests_are_asked_in_the_same_query_with_its_login():
    ctx = make_ctx()
    action = RegistryDigests(IMAGES, "https://quay.io", [["https://quay.io", "robot", "pw"]])
    [section] = action.sections(ctx)
    answered = {"manifests": [{"status": 200, "digest": K_DIGEST}] * 3 + [{"status": 200, "digest": N_DIGEST}] * 3}
    facts = host_facts()
    section.parse(facts_base.Texts({section.name: json.dumps(answered)}), facts)

    asked = request_of(section.shell)
    assert [query[0] for query in asked["manifests"]] == ["http://192.0.2.10:4000"] * 3 + ["https://quay.io"] * 3
    assert asked["logins"] == [["https://quay.io", "robot", "pw"]]
    assert action.found(facts, ctx)[1] == {image: N_DIGEST for image in IMAGES}


def test_parse_pulls_keeps_the_wanted_order_and_fails_what_got_no_answer():
    output = (
        f"noise\n{MARK} {PULLED} {NOVA.at(REGISTRY)} sha256:n\n{MARK} {PRESENT} {KEYSTONE.at(REGISTRY)}\n"
    )

    assert pull.parse_pulls(output, WANTED) == [
        Pulled(KEYSTONE, PRESENT, ""),
        Pulled(NOVA, PULLED, "sha256:n"),
        Pulled(GLANCE, FAILED, "no answer from the node"),
    ]


# --- the node's row -----------------------------------------------------------------------------


def marked(*pulls: Pulled) -> str:
    return "".join(f"{MARK} {p.status} {p.image.at(REGISTRY)} {p.detail}\n" for p in pulls)


@pytest.mark.parametrize(
    "pulls, failed, changed, message",
    [
        ([Pulled(KEYSTONE, PRESENT), Pulled(NOVA, PRESENT)], False, False, "holds 3/3"),
        ([Pulled(KEYSTONE, PULLED), Pulled(NOVA, PRESENT)], False, True, "pulled 1; holds 3/3"),
        (
            [Pulled(KEYSTONE, PULLED), Pulled(NOVA, FAILED, "manifest unknown")],
            True,
            True,
            f"holds 2/3; failed {NOVA.name}: manifest unknown",
        ),
        (
            [Pulled(image, FAILED, "http: server gave HTTP response to HTTPS client") for image in IMAGES],
            True,
            False,
            (
                f"holds 0/3; failed 3 images ({KEYSTONE.name}, ...): http: server gave HTTP response to HTTPS "
                "client (run fab configure-targets)"
            ),
        ),
        (
            [Pulled(KEYSTONE, FAILED, "timeout"), Pulled(NOVA, FAILED, "timeout"), Pulled(GLANCE, FAILED, "gone")],
            True,
            False,
            f"holds 0/3; failed {KEYSTONE.name}, {NOVA.name}: timeout; {GLANCE.name}: gone",
        ),
    ],
)
def test_the_row_once_pulled(pulls, failed, changed, message):
    todo = {p.image.at(REGISTRY): p.image for p in pulls}

    done = pull.pulled_done(marked(*pulls), WANTED, todo, secure=False)

    assert (done.failed, done.message) == (failed, message)
    if not failed:
        assert done.changed is changed


def nodes(modes: Modes, holdings: dict[str, dict], answer=None):
    """pull-images over node1 and node2 with the engine's Runner; each node holds ``holdings[name]``."""
    ctx = replace(make_ctx(registry={"address": "192.0.2.10"}), modes=modes)

    def make(host, host_ctx):
        return StandInRun(host, host_ctx, on_host=docker_host(docker_images=holdings[host.name]), answer=answer)

    action = PullImages(pull.PullOrder(every_host_wants(IMAGES), DIGESTS, per_node=3, retries=3))
    return run_stand_ins(action, ctx, ctx.inventory.targets, make, parallel=2)


EVERYTHING = held(keystone=K_DIGEST, **{"nova-api": N_DIGEST, "glance-api": G_DIGEST})
STALE = held(keystone=K_DIGEST, **{"nova-api": "sha256:" + "f" * 64})


def pulls_all(script: str) -> str:
    """A node whose engine pulls every image it is asked for."""
    return "".join(f"{MARK} {PULLED} {ref} sha256:x\n" for ref in WANTED if ref in script)


def test_check_mode_pulls_nothing_and_says_what_each_node_would_pull():
    result, runs = nodes(Modes(check=True), {"node1": EVERYTHING, "node2": STALE}, pulls_all)

    assert [run.scripts for run in runs.values()] == [[], []]
    assert [(o.host, o.status, o.message) for o in result.outcomes] == [
        ("node1", OK, "holds 3/3"),
        ("node2", CHANGED, f"holds 1/3; would pull {NOVA.name}, {GLANCE.name}"),
    ]
    assert result.outcomes[1].engine == "docker 20.10.24+dfsg1"


def test_a_node_pulls_what_it_lacks_and_one_that_holds_everything_runs_nothing():
    result, runs = nodes(Modes(), {"node1": EVERYTHING, "node2": STALE}, pulls_all)

    assert runs["node1"].scripts == []
    [script] = runs["node2"].scripts
    assert NOVA.at(REGISTRY) in script and KEYSTONE.at(REGISTRY) not in script
    assert [(o.host, o.status, o.message) for o in result.outcomes] == [
        ("node1", OK, "holds 3/3"),
        ("node2", CHANGED, "pulled 2; holds 3/3"),
    ]
    assert result.outcomes[1].data == {"images": 3, "held": 3, "pulled": 2}


def test_diff_mode_lists_each_image_each_node_would_pull(capsys):
    nodes(Modes(check=True, diff=True), {"node1": EVERYTHING, "node2": STALE})

    shown = capsys.readouterr().out
    assert f"--- node2 ---\n+ {NOVA.at(REGISTRY)}\n+ {GLANCE.at(REGISTRY)}\n" in shown
    assert "--- node1 ---" not in shown


def test_a_failed_pull_fails_the_node_and_says_why():
    def refuses(script: str) -> str:
        return "".join(f"{MARK} failed {ref} manifest unknown\n" for ref in WANTED if ref in script)

    result, _ = nodes(Modes(), {"node1": EVERYTHING, "node2": STALE}, refuses)

    assert result.failed
    assert (result.outcomes[1].status, result.outcomes[1].message) == (
        FAILED,
        f"holds 1/3; failed {NOVA.name}, {GLANCE.name}: manifest unknown",
    )


# --- several pulls at once ---------------------------------------------------------------------

# A docker whose pulls wait, each, until all of them have started (so they run at once, or the wait
# runs out and the pull says so); then keystone and nova-api are pulled and glance-api is unknown.
AT_ONCE_DOCKER = """#!/bin/sh
ref=$2; touch "$LOG.started.${ref##*/}"; n=0
while [ "$(ls "$LOG".started.* | wc -l)" -lt "$WANT" ]; do
  n=$((n + 1)); [ "$n" -gt 300 ] && { echo "not at once: $ref" >&2; exit 1; }; sleep 0.02
done
case "$ref" in
  *glance*) echo "Error response from daemon: manifest for $ref not found: manifest unknown" >&2; exit 1 ;;
  *) echo "Digest: sha256:${ref##*/}"; echo "Status: Downloaded newer image for $ref" ;;
esac
"""


def test_pulls_at_once_each_get_their_own_row_and_a_failed_one_is_named(docker_env, tmp_path):
    (tmp_path / "docker").write_text(AT_ONCE_DOCKER)
    (tmp_path / "sleep").unlink()  # the real sleep: the pulls wait for each other

    done = sh(DOCKER.pull_script(list(WANTED), per_node=3, retries=0), {**docker_env, "WANT": "3"})
    row = pull.pulled_done(done.stdout, WANTED, WANTED, secure=False)

    unknown = f"Error response from daemon: manifest for {GLANCE.at(REGISTRY)} not found: manifest unknown"
    assert pull.parse_pulls(done.stdout, WANTED) == [
        Pulled(KEYSTONE, PULLED, "sha256:keystone:zed"),
        Pulled(NOVA, PULLED, "sha256:nova-api:zed"),
        Pulled(GLANCE, FAILED, unknown),
    ]
    assert (row.failed, row.message) == (True, f"holds 2/3; failed {GLANCE.name}: {unknown}")


def test_the_largest_images_are_pulled_first_and_unknown_sizes_last_in_their_order():
    todo = dict(WANTED)

    assert pull.largest_first(todo, {NOVA: 900, GLANCE: 300}) == [NOVA.at(REGISTRY), GLANCE.at(REGISTRY), KEYSTONE.at(REGISTRY)]
    assert pull.largest_first(todo, {}) == list(WANTED)


def test_the_planner_hands_the_engine_the_largest_first():
    facts = docker_host(docker_images={})
    ctx = make_ctx()
    sizes = {GLANCE: 3, KEYSTONE: 2, NOVA: 1}
    plan = pull.pull_planner(pull.PullOrder(every_host_wants(IMAGES), DIGESTS, per_node=3, retries=3, sizes=sizes))(facts, ctx)

    [job] = plan.jobs
    listed = job.script.split("printf '%s\\n' ", 1)[1].split(" | xargs", 1)[0].split()
    assert listed == [GLANCE.at(REGISTRY), KEYSTONE.at(REGISTRY), NOVA.at(REGISTRY)]
