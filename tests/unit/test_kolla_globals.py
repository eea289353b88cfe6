"""kolla_globals: globals.yml text in, the same text with three keys set out (every other byte kept)."""

from __future__ import annotations

import subprocess

import pytest
import yaml

from fabfile.facts.base import files, parse, script
from fabfile.kolla import globals_yaml as kg
from fabfile.kolla.globals_yaml import globals_planner
from fabfile.model.facts import HostFacts
from fabfile.model.plan import StepPlan

from .factories import host_facts, make_ctx

VALUES = kg.globals_values("192.0.2.10:4000", "openstack.kolla")
SET = [
    'docker_registry: "192.0.2.10:4000"',
    "docker_registry_insecure: true",
    'docker_namespace: "openstack.kolla"',
]

# The shape of kolla-ansible's etc/kolla/globals.yml: mostly commented-out templates.
KOLLA_SAMPLE = """\
---
# You can use this file to override _any_ variable throughout Kolla.

###############
# Kolla options
###############
#kolla_base_distro: "rocky"
kolla_base_distro: "ubuntu"

#openstack_release: ""

# Custom docker registry settings:
#docker_registry:
# Please read the docs carefully before applying docker_registry_insecure.
#docker_registry_insecure: "no"
#docker_registry_username:
# docker_registry_password is set in the passwords.yml file.

# Namespace of images:
#docker_namespace: "kolla"

network_interface: "eth0"   # the management network
"""


def changed_lines(before: str, after: str) -> tuple[list[str], list[str]]:
    """Lines only in ``before``, lines only in ``after`` (in order)."""
    old, new = before.splitlines(), after.splitlines()
    return [line for line in old if line not in new], [line for line in new if line not in old]


def test_kolla_sample_gets_each_key_under_its_template_and_nothing_else_changes():
    after = kg.set_globals(KOLLA_SAMPLE, VALUES)

    assert changed_lines(KOLLA_SAMPLE, after) == ([], SET)
    lines = after.splitlines()
    assert lines[lines.index("#docker_registry:") + 1] == SET[0]
    assert lines[lines.index('#docker_registry_insecure: "no"') + 1] == SET[1]
    assert lines[lines.index('#docker_namespace: "kolla"') + 1] == SET[2]
    assert yaml.safe_load(after)["kolla_base_distro"] == "ubuntu"


def test_second_edit_changes_nothing():
    once = kg.set_globals(KOLLA_SAMPLE, VALUES)

    assert kg.set_globals(once, VALUES) == once


def test_set_keys_are_replaced_in_place_keeping_their_trailing_comments():
    text = (
        "kolla_base_distro: ubuntu\n"
        "docker_registry: quay.io   # was upstream\n"
        "docker_registry_insecure: no\n"
        "docker_namespace: 'kolla'\n"
        "enable_haproxy: 'no'\n"
    )

    after = kg.set_globals(text, VALUES)

    assert after == (
        "kolla_base_distro: ubuntu\n"
        'docker_registry: "192.0.2.10:4000"   # was upstream\n'
        "docker_registry_insecure: true\n"
        'docker_namespace: "openstack.kolla"\n'
        "enable_haproxy: 'no'\n"
    )


@pytest.mark.parametrize("written", ["yes", '"yes"', "True", "on", "1", "true  # HTTP only"])
def test_an_insecure_value_kolla_ansible_already_reads_as_true_is_kept(written):
    text = f'docker_registry: "192.0.2.10:4000"\ndocker_registry_insecure: {written}\ndocker_namespace: openstack.kolla\n'

    assert kg.set_globals(text, VALUES) == text


def test_a_hash_inside_quotes_is_not_taken_for_a_comment():
    text = 'docker_registry: "old #1" # note\n'

    assert kg.set_globals(text, {"docker_registry": "new"}) == 'docker_registry: "new" # note\n'


def test_missing_keys_without_templates_are_appended_and_a_last_line_gets_its_newline():
    assert kg.set_globals("enable_cinder: yes", VALUES) == "enable_cinder: yes\n" + "".join(
        f"{s}\n" for s in SET
    )


def test_windows_line_endings_are_kept():
    text = "enable_cinder: yes\r\ndocker_registry: quay.io\r\n"

    after = kg.set_globals(text, VALUES)

    assert after.startswith('enable_cinder: yes\r\ndocker_registry: "192.0.2.10:4000"\r\n')
    assert after.count("\r\n") == 4 and "\n" not in after.replace("\r\n", "")


def test_keys_that_only_start_alike_or_are_nested_are_left_alone():
    text = "docker_registry_username: admin\nsettings:\n  docker_registry: nested\n"

    after = kg.set_globals(text, {"docker_registry": "r:4000"})

    assert after == text + 'docker_registry: "r:4000"\n'


def test_a_value_continued_on_indented_lines_is_replaced_whole():
    text = "docker_registry:\n  quay.io\n  # kept comment\nnext: 1\n"

    assert kg.set_globals(text, {"docker_registry": "r:4000"}) == (
        'docker_registry: "r:4000"\n  # kept comment\nnext: 1\n'
    )


def test_a_key_set_twice_is_set_everywhere():
    text = "docker_namespace: a\nother: 1\ndocker_namespace: b\n"

    after = kg.set_globals(text, {"docker_namespace": "kolla"})

    assert after == 'docker_namespace: "kolla"\nother: 1\ndocker_namespace: "kolla"\n'


# --- the plan ------------------------------------------------------------------------------


def test_plan_for_an_absent_file_creates_it():
    plan = kg.globals_plan("/etc/kolla/globals.yml", None, VALUES)

    [change] = plan.files
    assert change.before is None
    assert change.after == "---\n" + "".join(f"{line}\n" for line in SET)


def test_plan_for_a_file_already_set_says_so():
    done = kg.set_globals(KOLLA_SAMPLE, VALUES)

    plan = kg.globals_plan("/etc/kolla/globals.yml", done, VALUES)

    assert not plan.changed and plan.error is None
    assert plan.notes == [", ".join(SET)]


def test_plan_writes_the_edit():
    plan = kg.globals_plan("/etc/kolla/globals.yml", KOLLA_SAMPLE, VALUES)

    [change] = plan.files
    assert (change.path, change.before, change.after) == (
        "/etc/kolla/globals.yml",
        KOLLA_SAMPLE,
        kg.set_globals(KOLLA_SAMPLE, VALUES),
    )


@pytest.mark.parametrize(
    "text, problem",
    [
        ("docker_registry: [unclosed\n", "not valid YAML (line 2); left as it is"),
        ("- a\n- b\n", "not a YAML mapping; left as it is"),
        # A flow mapping on one line cannot be edited line by line.
        (
            "{docker_registry: quay.io}\n",
            (
                "cannot set docker_registry, docker_registry_insecure, docker_namespace with a line edit; "
                "left as it is"
            ),
        ),
    ],
)
def test_plan_refuses_files_a_line_edit_cannot_handle(text, problem):
    plan = kg.globals_plan("/etc/kolla/globals.yml", text, VALUES)

    assert not plan.changed
    assert plan.error == f"/etc/kolla/globals.yml: {problem}"


# --- reading the file from the host --------------------------------------------------------


def run(script: str) -> str:
    return subprocess.run(["sh", "-c", script], capture_output=True, text=True, check=False).stdout


def read(path) -> tuple[HostFacts, StepPlan]:
    """globals.yml read as kolla-globals reads it (its files section, run for real), and the plan."""
    section = files(str(path))
    found = parse(run(script([section])), [section])
    return found, globals_planner(str(path), "openstack.kolla")(found, make_ctx())


def test_the_file_round_trips_the_exact_bytes(tmp_path):
    path = tmp_path / "globals.yml"
    path.write_bytes(b"a: 1\n\n\n# trailing blank lines matter\n\n")

    assert read(path)[0].files[str(path)] == path.read_text()


def test_an_empty_file_is_empty_and_an_absent_one_is_created(tmp_path):
    empty = tmp_path / "empty.yml"
    empty.write_text("")

    assert read(empty)[0].files[str(empty)] == ""
    found, plan = read(tmp_path / "absent.yml")
    assert str(tmp_path / "absent.yml") not in found.files
    assert plan.files[0].before is None and plan.files[0].after.startswith("---\n")


def test_a_directory_is_refused(tmp_path):
    assert read(tmp_path)[1].error == f"{tmp_path}: not a regular file; left as it is"


def test_text_that_is_not_utf8_is_refused(tmp_path):
    path = tmp_path / "globals.yml"
    path.write_bytes(b"docker_registry: J\xf6rg\n")

    assert read(path)[1].error == f"{path}: not UTF-8 text; left as it is"


# --- podman -------------------------------------------------------------------------------------

PODMAN_GLOBALS = KOLLA_SAMPLE.replace(
    '#kolla_base_distro: "rocky"\n', '#kolla_base_distro: "rocky"\nkolla_container_engine: podman\n'
) + '#podman_registry:\n#podman_registry_insecure: "no"\n'


def podman_plan(text: str, registry: dict | None = None):
    ctx = make_ctx(registry)
    return globals_planner("/etc/kolla/globals.yml", "openstack.kolla")(
        host_facts(files={"/etc/kolla/globals.yml": text}), ctx
    )


def test_podman_gets_its_own_registry_keys_where_globals_selects_it():
    [change] = podman_plan(PODMAN_GLOBALS).files

    data = yaml.safe_load(change.after)
    assert data["podman_registry"] == data["docker_registry"] == "192.0.2.10:4000"
    assert data["podman_registry_insecure"] is True and data["docker_registry_insecure"] is True
    # Each under its commented-out template, as the Docker keys are.
    assert '#podman_registry:\npodman_registry: "192.0.2.10:4000"\n' in change.after
    assert changed_lines(PODMAN_GLOBALS, change.after)[0] == []


def test_a_docker_globals_gets_no_podman_keys():
    [change] = podman_plan(KOLLA_SAMPLE).files

    assert "podman_registry" not in change.after


def test_podman_keys_are_kept_in_step_and_a_second_run_changes_nothing():
    first = podman_plan(PODMAN_GLOBALS.replace("#podman_registry:\n", 'podman_registry: "quay.io"\n'))
    [change] = first.files

    assert yaml.safe_load(change.after)["podman_registry"] == "192.0.2.10:4000"
    assert not podman_plan(change.after).changed


def test_podman_on_a_tls_registry_is_not_insecure():
    [globals_change, *_] = podman_plan(PODMAN_GLOBALS, {"tls": "self-signed"}).files

    assert yaml.safe_load(globals_change.after)["podman_registry_insecure"] is False


@pytest.mark.parametrize(
    "text, podman",
    [("kolla_container_engine: podman\n", True), ("kolla_container_engine: docker\n", False), ("", False),
     ("#kolla_container_engine: podman\n", False), ("[unclosed\n", False)],
)
def test_selects_podman(text, podman):
    assert kg.selects_podman(text) is podman


def secure_plan(files: dict[str, str]):
    ctx = make_ctx({"tls": "self-signed", "auth": "htpasswd"})
    ctx = ctx.__class__(ctx.inventory, ctx.registry_address, ctx.modes, ca="CA PEM\n", password="pw-123")
    return globals_planner("/etc/kolla/globals.yml", "openstack.kolla")(host_facts(files=files), ctx)


def test_a_missing_passwords_yml_is_left_to_kolla_genpwd():
    plan = secure_plan({"/etc/kolla/globals.yml": "---\n"})

    # An error plan: the engine writes none of its files (globals.yml waits for the passwords too).
    assert plan.error == "/etc/kolla/passwords.yml: missing: run kolla-genpwd first (it makes kolla-ansible's passwords), then fab kolla-globals"
    assert not any(change.path.endswith("passwords.yml") for change in plan.files)


def test_the_registry_password_fills_kolla_genpwds_file_as_a_secret():
    plan = secure_plan({"/etc/kolla/globals.yml": "---\n", "/etc/kolla/passwords.yml": "database_password: x\ndocker_registry_password:\n"})

    change = next(change for change in plan.files if change.path == "/etc/kolla/passwords.yml")
    assert change.after == 'database_password: x\ndocker_registry_password: "pw-123"\n'
    assert change.secret and change.mode == "600" and "pw-123" not in plan.summary()
