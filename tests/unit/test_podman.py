"""Podman nodes: the registries.conf drop-in, entries elsewhere that conflict, TLS, both engines, the checks."""

from __future__ import annotations

import os
import subprocess
import tomllib
from dataclasses import replace

import pytest

from fabfile.actions.targets import ConfigureTargets, configure_engines, pull_checks
from fabfile.engines import described
from fabfile.engines import installed as engines_installed
from fabfile.engines.docker import facts as docker_facts
from fabfile.engines.docker.paths import DAEMON_JSON
from fabfile.engines.podman import facts as podman_facts
from fabfile.engines.podman import registries as pr
from fabfile.engines.podman import verify as pv
from fabfile.engines.podman.paths import ca_path as podman_ca_path
from fabfile.engines.shell import in_turn
from fabfile.facts import base as host_facts
from fabfile.model.context import Modes
from fabfile.model.facts import HostFacts
from fabfile.model.marks import MARK
from fabfile.model.outcome import CHANGED, FAILED, OK
from fabfile.model.plan import RELOAD, Handler

from .factories import (
    DEBIAN_REGISTRIES_CONF,
    REGISTRY,
    applied,
    changed,
    docker_host,
    fresh_debian,
    make_ctx,
    podman_dropin,
    podman_host,
    run_on_host,
)

SECURE = {"tls": "self-signed", "auth": "htpasswd"}
CA = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
PASSWORD = "Zx9-s3cret_token"
LATER = f"{pr.REGISTRIES_DIR}/99-site.conf"
EARLIER = f"{pr.REGISTRIES_DIR}/10-site.conf"


def entry(location: str = REGISTRY, **keys) -> str:
    """A ``[[registry]]`` table as an operator writes one."""
    lines = [f'location = "{location}"'] + [f"{key} = {_toml(value)}" for key, value in keys.items()]
    return "[[registry]]\n" + "\n".join(lines) + "\n"


def _toml(value) -> str:
    return str(value).lower() if isinstance(value, bool) else f'"{value}"'


def with_files(facts: HostFacts, **by_path: str) -> HostFacts:
    return changed(facts, files={**facts.files, **{path: text for path, text in by_path.values()}})


def secure_ctx():
    return replace(make_ctx(SECURE), ca=CA, password=PASSWORD)


# --- TOML ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value", ["192.0.2.10:4000", 'a"b', "back\\slash", "new\nline", "tab\tand\x7f", "ünïcode", "\x00\x1f"]
)
def test_toml_strings_read_back_as_written(value):
    assert tomllib.loads(f"key = {pr.toml_string(value)}\n")["key"] == value


@pytest.mark.parametrize("insecure", [True, False])
def test_the_dropin_is_valid_toml_with_one_entry(insecure):
    # Made anew (no drop-in yet) for one registry: the header, then its one table.
    assert tomllib.loads(podman_dropin(REGISTRY, insecure)) == {
        "registry": [{"location": REGISTRY, "insecure": insecure}]
    }


# --- the planner --------------------------------------------------------------------------------


def test_a_fresh_podman_node_gets_the_dropin_and_nothing_to_reload():
    plan = pr.trust_podman(podman_host(), make_ctx())

    [change] = plan.files
    assert (change.path, change.before) == (pr.DROPIN, None)
    assert tomllib.loads(change.after)["registry"] == [{"location": REGISTRY, "insecure": True}]
    assert plan.handler is None and plan.commands == [] and plan.error is None


def test_a_configured_node_changes_nothing():
    first = pr.trust_podman(podman_host(), make_ctx())
    again = pr.trust_podman(applied(podman_host(), first), make_ctx())

    assert not again.changed and again.error is None
    assert again.notes == [f"podman: {REGISTRY} in {pr.DROPIN}"]


def test_other_files_are_read_never_written():
    shortnames = f"{pr.REGISTRIES_DIR}/000-shortnames.conf"
    facts = with_files(
        podman_host(), a=(shortnames, '[aliases]\n"fedora" = "registry.fedoraproject.org/fedora"\n')
    )

    assert [change.path for change in pr.trust_podman(facts, make_ctx()).files] == [pr.DROPIN]


def test_an_edited_dropin_is_put_back():
    facts = with_files(podman_host(), ours=(pr.DROPIN, entry(insecure=False)))

    [change] = pr.trust_podman(facts, make_ctx()).files
    assert change.before == entry(insecure=False) and change.after == podman_dropin(REGISTRY, True)


@pytest.mark.parametrize(
    "path, text, says",
    [
        pytest.param(pr.REGISTRIES_CONF, entry(insecure=False), "sets insecure = false", id="secure-in-main"),
        pytest.param(EARLIER, entry(blocked=True, insecure=True), "blocks it", id="blocked-earlier"),
        pytest.param(LATER, entry(), "sets insecure = false", id="wins-later"),
        pytest.param(
            LATER, entry("mirror.example:5000", prefix=REGISTRY), "sends its pulls to", id="redirect"
        ),
        pytest.param(LATER, entry(f"{REGISTRY}/openstack.kolla", blocked=True), "blocks it", id="repository"),
        pytest.param(LATER, entry(insecure=True, mirror=None), "", id="placeholder"),
        pytest.param(
            pr.REGISTRIES_CONF, f'[registries.block]\nregistries = ["{REGISTRY}"]\n', "blocks", id="v1"
        ),
        pytest.param(LATER, "[[registry]\nlocation = 1\n", "not valid TOML", id="not-toml"),
        pytest.param(LATER, 'registry = "x"\n', "not a list of tables", id="wrong-shape"),
    ],
)
def test_a_conflicting_entry_elsewhere_fails_the_node_naming_the_file(path, text, says):
    if says == "":
        # An entry with mirrors pulls through them first: not what the drop-in says either.
        text, says = entry(insecure=True) + '[[registry.mirror]]\nlocation = "m:5000"\n', "mirrors"
    facts = with_files(podman_host(), other=(path, text))

    plan = pr.trust_podman(facts, make_ctx())

    assert plan.files == [] and plan.error.startswith(f"{path}: ")
    assert says in plan.error and "left as it is" in plan.error and "\n" not in plan.error


@pytest.mark.parametrize(
    "text",
    [
        pytest.param(entry(insecure=True), id="the-same-entry"),
        pytest.param(entry("10.0.0.5:5000", blocked=True), id="another-registry"),
        pytest.param(entry("192.0.2.10", blocked=True), id="a-shorter-prefix-ours-outranks"),
        pytest.param(f'[registries.insecure]\nregistries = ["{REGISTRY}"]\n', id="v1-insecure"),
        pytest.param(f'[registries.search]\nregistries = ["{REGISTRY}"]\n', id="v1-search"),
        pytest.param(DEBIAN_REGISTRIES_CONF, id="all-comments"),
    ],
)
def test_entries_that_agree_or_are_for_others_are_no_conflict(text):
    facts = with_files(podman_host(), other=(LATER, text))

    assert pr.trust_podman(facts, make_ctx()).error is None


def test_roots_own_registries_conf_hides_the_dropin():
    facts = with_files(podman_host(), root=(pr.ROOT_CONF, entry()))

    assert pr.trust_podman(facts, make_ctx()).error.startswith(f"{pr.ROOT_CONF}: podman reads it instead")


def test_a_dropin_this_tool_cannot_read_cannot_be_checked():
    odd = f"{pr.REGISTRIES_DIR}/my registry.conf"
    facts = changed(podman_host(), unreadable={odd: "a file name this tool does not edit"})

    assert pr.trust_podman(facts, make_ctx()).error.startswith(f"{odd}: a file name this tool does not edit;")


def test_a_folder_named_conf_is_skipped_as_podman_skips_it():
    facts = changed(podman_host(), unreadable={f"{pr.REGISTRIES_DIR}/old.conf": "not a regular file"})

    assert pr.trust_podman(facts, make_ctx()).error is None


def test_read_order_is_podmans():
    facts = with_files(
        podman_host(),
        a=(LATER, ""),
        b=(EARLIER, ""),
        c=(pr.DROPIN, ""),
        d=(f"{pr.ROOT_DIR}/00-mine.conf", ""),
    )

    assert pr.read_order(facts) == [pr.REGISTRIES_CONF, EARLIER, LATER, f"{pr.ROOT_DIR}/00-mine.conf"]


# --- TLS ----------------------------------------------------------------------------------------


def test_a_tls_registry_puts_its_ca_where_podman_reads_it_and_a_secure_entry():
    plan = pr.trust_podman(podman_host(), secure_ctx())

    by_path = {change.path: change.after for change in plan.files}
    assert by_path == {podman_ca_path(REGISTRY): CA, pr.DROPIN: podman_dropin(REGISTRY, insecure=False)}
    assert podman_ca_path(REGISTRY) == f"/etc/containers/certs.d/{REGISTRY}/ca.crt"
    assert plan.handler is None


def test_a_tls_registry_without_its_ca_yet_names_the_fix():
    plan = pr.trust_podman(podman_host(), replace(secure_ctx(), ca=""))

    assert plan.error == "the registry's CA is not on the deployment host yet: run fab deploy-host"


def test_an_insecure_entry_elsewhere_conflicts_with_a_tls_registry():
    facts = with_files(podman_host(), other=(pr.REGISTRIES_CONF, entry(insecure=True)))

    assert "sets insecure = true" in pr.trust_podman(facts, secure_ctx()).error


def test_moving_to_tls_keeps_the_insecure_entry_until_tls_verifies():
    before = with_files(podman_host(), ours=(pr.DROPIN, podman_dropin(REGISTRY, insecure=True)))
    assert pr.still_insecure(before, REGISTRY)

    first = pr.trust_podman(changed(before, registry_tls="no CA for it yet"), secure_ctx())
    assert [change.path for change in first.files] == [podman_ca_path(REGISTRY)]
    assert "stays insecure" in first.notes[0]

    verified = changed(applied(before, first), registry_tls="401")
    [change] = pr.trust_podman(verified, secure_ctx()).files
    assert change.path == pr.DROPIN and change.after == podman_dropin(REGISTRY, insecure=False)
    assert not pr.still_insecure(applied(verified, pr.trust_podman(verified, secure_ctx())), REGISTRY)


# --- both engines, neither ----------------------------------------------------------------------


def test_a_node_with_both_engines_gets_both_and_dockers_reload():
    facts = with_files(docker_host(podman_version="4.3.1"), conf=(pr.REGISTRIES_CONF, DEBIAN_REGISTRIES_CONF))

    plan = configure_engines(facts, make_ctx())

    assert {change.path for change in plan.files} == {DAEMON_JSON, pr.DROPIN}
    # Docker's handler fires with the changes (podman has none), expecting the registry insecure.
    assert plan.handler == RELOAD and plan.fire == Handler(REGISTRY, insecure=True) and plan.commands == []


def test_a_podman_node_has_no_docker_files_and_no_handler():
    plan = configure_engines(podman_host(), make_ctx())

    assert [change.path for change in plan.files] == [pr.DROPIN]
    assert plan.handler is None and plan.fire is None and plan.commands == []


def test_a_podman_conflict_fails_a_node_whose_docker_is_fine():
    facts = with_files(docker_host(podman_version="4.3.1"), other=(LATER, entry(blocked=True)))

    assert configure_engines(facts, make_ctx()).error.startswith(f"{LATER}: ")


@pytest.mark.parametrize(
    "facts, label",
    [
        (docker_host("26.1.5"), "docker 26.1.5"),
        (podman_host("5.4.2"), "podman 5.4.2"),
        (docker_host("20.10.24", podman_version="4.3.1"), "docker 20.10.24+podman 4.3.1"),
        (fresh_debian(), ""),
    ],
)
def test_the_engine_label(facts, label):
    assert described(facts) == label


def configure_node(facts: HostFacts, ctx=None):
    """configure-targets on node1, whose facts are ``facts`` and whose scripts all succeed."""
    return run_on_host(ConfigureTargets(), facts, ctx)


def test_a_node_with_neither_engine_is_a_failed_row_naming_the_fix():
    run = configure_node(fresh_debian())

    [row] = run.outcomes
    assert row.status == FAILED and run.scripts == []
    assert row.message == (
        "neither Docker nor Podman is installed: run fab -H node1 install-docker, or install podman"
    )


def test_a_fresh_podman_node_writes_the_dropin_and_pulls_with_podman_in_one_session():
    run = configure_node(podman_host())

    [row] = run.outcomes
    assert row.status == CHANGED and row.message == f"write {pr.DROPIN}; pulled probe with podman"
    [script] = run.scripts
    assert "podman pull -q" in script and "systemctl" not in script
    assert row.engine == "podman 5.4.2"


def test_a_configured_podman_node_checked_in_its_facts_session_needs_no_other():
    facts = applied(podman_host(), pr.trust_podman(podman_host(), make_ctx()))
    run = configure_node(changed(facts, podman_verified=(0, f"{MARK} resolved x with podman")))

    assert run.scripts == []
    assert [(o.status, o.message) for o in run.outcomes] == [
        (OK, f"{REGISTRY} trusted; resolved probe with podman")
    ]


def test_a_failed_podman_check_in_the_facts_session_fails_the_row():
    facts = applied(podman_host(), pr.trust_podman(podman_host(), make_ctx()))
    failed = f"{MARK} fail podman pull x: manifest unknown"
    run = configure_node(changed(facts, podman_verified=(1, failed)))

    assert [(o.status, o.message) for o in run.outcomes] == [
        (FAILED, "exit 1: podman pull x: manifest unknown")
    ]


def test_check_mode_on_a_podman_node_says_what_it_would_write():
    run = configure_node(podman_host(), replace(make_ctx(), modes=Modes(check=True)))

    assert run.scripts == [] and [o.status for o in run.outcomes] == [CHANGED]


# --- facts --------------------------------------------------------------------------------------


def output(*sections: tuple[str, str]) -> str:
    return "".join(f"\n{MARK} {name}\n{body}" for name, body in sections)


@pytest.mark.parametrize(
    "printed, version", [("5.4.2\n", "5.4.2"), ("podman version 4.3.1\n", "4.3.1"), ("", "")]
)
def test_podmans_version_is_parsed(printed, version):
    parsed = host_facts.parse(output(("podman", printed)), [podman_facts.VERSION])

    assert parsed.engine("podman").version == version


def test_registries_files_are_gathered_by_glob_and_parsed(tmp_path):
    (tmp_path / "10-a.conf").write_text(entry())
    (tmp_path / "notes.txt").write_text("not read")
    section = host_facts.files(
        str(tmp_path / "main.conf"), globs=(f"{tmp_path}/*.conf", f"{tmp_path}/none/*.conf")
    )
    done = subprocess.run(
        ["sh", "-c", host_facts.script([section])], capture_output=True, text=True, check=True
    )

    assert host_facts.parse(done.stdout, [section]).files == {str(tmp_path / "10-a.conf"): entry()}


@pytest.mark.parametrize(
    "glob", ["/etc/x/*.conf;touch y", "/etc/$(id)/*.conf", "relative/*.conf", "/etc/../*"]
)
def test_a_glob_with_shell_syntax_is_refused(glob):
    with pytest.raises(ValueError, match="not a glob"):
        host_facts.files(globs=(glob,))


def test_the_target_facts_read_podman_its_files_and_its_check():
    ctx = make_ctx()
    checked = f"{MARK} pulled {ctx.probe_image} with podman"
    text = output(
        ("podman", "5.4.2\n"),
        (f"file {pr.REGISTRIES_CONF}", "IyBub25lCg==\n"),
        (pv.VERIFY, checked + "\n"),
        (pv.VERIFIED, "0\n"),
    )

    parsed = host_facts.parse(text, ConfigureTargets().sections(ctx))

    assert parsed.engine("podman").version == "5.4.2" and parsed.files == {pr.REGISTRIES_CONF: "# none\n"}
    assert parsed.engine("podman").checked == (0, checked + "\n")
    assert parsed.engine("docker").version == ""


@pytest.mark.parametrize("shell", ["sh", "bash"])
def test_the_target_facts_script_is_valid_shell(shell):
    script = host_facts.script(ConfigureTargets().sections(replace(make_ctx(SECURE), password=PASSWORD)))

    assert (
        subprocess.run([shell, "-n"], input=script, capture_output=True, text=True, check=False).returncode
        == 0
    )


# --- the checks, under sh with a stand-in podman ------------------------------------------------


FAKE_PODMAN = """#!/bin/sh
printf '%s\\n' "$*" >> "$LOG"
case "$1" in
  login) cat > "$LOG.stdin"; for a in "$@"; do case $a in */auth.json) : > "$a"; echo "$a" > "$LOG.auth" ;; esac; done ;;
  pull) [ -z "$FAIL" ] || { echo "Error: initializing source: manifest unknown" >&2; exit 125; }; echo 3a3a ;;
  manifest) [ -z "$FAIL" ] || { echo "Error: reading manifest: manifest unknown" >&2; exit 125; }; echo '{}' ;;
esac
"""
FAKE_CURL = (
    "#!/bin/sh\nprintf 'HTTP/1.1 200 OK\\r\\nDocker-Distribution-Api-Version: registry/2.0\\r\\n\\r\\n'\n"
)


def run_check(script: str, tmp_path, fail: bool = False) -> subprocess.CompletedProcess:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    (bin_dir / "podman").write_text(FAKE_PODMAN)
    (bin_dir / "curl").write_text(FAKE_CURL)
    for tool in bin_dir.iterdir():
        tool.chmod(0o755)
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "LOG": str(tmp_path / "log"), "FAIL": "yes" if fail else ""}
    return subprocess.run(["sh", "-c", script], env=env, capture_output=True, text=True, check=False)


def test_podman_pulls_the_probe_logged_in_with_the_password_only_on_stdin(tmp_path):
    ctx = secure_ctx()
    done = run_check(pv.podman_verify_script(ctx), tmp_path)

    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.splitlines()[-1] == f"{MARK} pulled {ctx.probe_image} with podman"
    argv = (tmp_path / "log").read_text()
    assert PASSWORD not in argv and "--password-stdin" in argv and "pull -q --authfile" in argv
    # The password comes decoded from its here-document, exactly as it is (no newline added).
    assert (tmp_path / "log.stdin").read_text() == PASSWORD
    # The authfile's private folder is gone once the check ends.
    authfile = (tmp_path / "log.auth").read_text().strip()
    assert authfile.endswith("/auth.json") and not os.path.exists(authfile)


def test_a_failed_podman_pull_is_a_fail_mark_with_podmans_words(tmp_path):
    ctx = make_ctx()
    done = run_check(pv.podman_verify_script(ctx), tmp_path, fail=True)

    assert done.returncode == 1
    assert done.stdout.splitlines()[-1] == (
        f"{MARK} fail podman pull {ctx.probe_image}: Error: initializing source: manifest unknown"
    )
    assert "login" not in (tmp_path / "log").read_text()


def test_on_a_node_with_both_engines_a_failed_check_stops_the_next(tmp_path):
    both = docker_host(podman_version="4.3.1")
    script = "false_check() { return 4; }\n" + in_turn(["false_check\n", "echo second\n"])

    done = run_check(script, tmp_path)

    assert done.returncode == 4 and "second" not in done.stdout
    assert pull_checks(both, make_ctx()).count("(\n") == 2
    assert "podman pull" not in pull_checks(docker_host(), make_ctx())


def test_the_facts_session_checks_podman_where_the_dropin_names_the_registry(tmp_path, monkeypatch):
    ctx = make_ctx()
    section = pv.podman_check(ctx, verify=True)
    assert pv.VERIFY not in run_check(host_facts.script([section]), tmp_path).stdout

    dropin = tmp_path / "50-kolla-registry.conf"
    dropin.write_text(podman_dropin(REGISTRY, True))
    monkeypatch.setattr(pv, "DROPIN", str(dropin))
    section = pv.podman_check(ctx, verify=True)
    done = run_check(host_facts.script([section]), tmp_path)

    status, said = host_facts.parse(done.stdout, [section]).engine("podman").checked
    # Resolved, not pulled: nothing downloaded on a run that changes nothing.
    assert status == 0 and said.strip() == f"{MARK} resolved {ctx.probe_image} with podman"
    assert f"manifest inspect {ctx.probe_image}" in (tmp_path / "log").read_text()
    assert "pull" not in (tmp_path / "log").read_text()
    assert pv.podman_check(ctx, verify=False).shell == ""


def test_a_probe_podman_cannot_resolve_is_pulled_for_podman_s_own_words(tmp_path):
    ctx = secure_ctx()

    done = run_check(pv.podman_verify_script(ctx, pull=False), tmp_path, fail=True)

    assert done.returncode == 1
    assert done.stdout.splitlines()[-1] == (
        f"{MARK} fail podman pull {ctx.probe_image}: Error: initializing source: manifest unknown"
    )
    # The login went to the private authfile for both, on stdin only.
    assert "manifest inspect --authfile" in (tmp_path / "log").read_text() and PASSWORD not in (tmp_path / "log").read_text()


@pytest.mark.parametrize(
    "server, installed",
    [
        ("", "podman version 4.3.1\n"),
        ("<no value>\n", "podman version 5.4.2\n"),
        (
            "",
            "Emulate Docker CLI using podman. Create /etc/containers/nodocker to quiet msg.\npodman version 4.9.4\n",
        ),
    ],
)
def test_podman_dockers_docker_command_is_not_taken_for_docker(server, installed):
    text = output(("dockerd", installed), ("docker-server", server), ("podman", "4.3.1\n"))

    parsed = host_facts.parse(text, [docker_facts.VERSION, podman_facts.VERSION])

    docker = parsed.engine("docker")
    engines = [engine.name for engine in engines_installed(parsed)]
    assert (docker.version, docker.answers, engines) == ("", False, ["podman"])


def test_the_drop_in_keeps_entries_for_other_registries_and_sets_ours_in_its_place():
    other = "198.51.100.7:5000"
    current = podman_dropin(other, True).replace(
        pr.HEADER, pr.HEADER + "\n[[registry]]\nlocation = " + f'"{REGISTRY}"\ninsecure = false\n'
    )
    merged = pr.dropin_with(current, REGISTRY, insecure=True)

    assert tomllib.loads(merged)["registry"] == [
        {"location": REGISTRY, "insecure": True},
        {"location": other, "insecure": True},
    ]
    assert pr.dropin_with(merged, REGISTRY, insecure=True) == merged
    assert tomllib.loads(pr.dropin_with(podman_dropin(other, True), REGISTRY, False))["registry"][1] == {
        "location": REGISTRY,
        "insecure": False,
    }
