"""The kolla image set's own logic: references, finding kolla-ansible's Python, the payload's
answers and its one-line errors (no kolla-ansible needed; the oracle tests are in tests/integration)."""

from __future__ import annotations

import io
import json
import sys
from importlib import metadata
from pathlib import Path
from types import SimpleNamespace

import pytest

from fabfile.images.model import Image
from fabfile.kolla.imageset import (
    PAYLOAD,
    KollaImagesError,
    PulledImage,
    image_set,
    kolla_python,
    run_payload,
    split_ref,
)
from fabfile.payload import kolla_images as payload
from tests import kolla_env

SET_IT = "set images.kolla_ansible to its virtualenv"


@pytest.mark.parametrize(
    ("ref", "registry", "path", "tag"),
    [
        ("quay.io/openstack.kolla/nova-compute:2026.2-rocky-10", "quay.io", "openstack.kolla/nova-compute", "2026.2-rocky-10"),
        ("registry.lab:4000/kolla/nova-api:2026.2-rocky-10-aarch64", "registry.lab:4000", "kolla/nova-api", "2026.2-rocky-10-aarch64"),
        ("localhost/kolla/cron:1", "localhost", "kolla/cron", "1"),
        ("kolla/cron:1", "", "kolla/cron", "1"),  # no registry: Docker Hub
        ("kolla/cron", "", "kolla/cron", "latest"),
    ],
)
def test_a_reference_splits_into_registry_and_image(ref: str, registry: str, path: str, tag: str) -> None:
    pulled = split_ref(ref)
    assert pulled == PulledImage(registry, Image(path, tag))
    assert pulled.ref == (ref if ":" in ref.rsplit("/", 1)[-1] else f"{ref}:latest")


def test_the_answer_becomes_data() -> None:
    answer = {"kolla_ansible": "23.0.0", "registry": "quay.io", "namespace": "openstack.kolla",
              "hosts": {"cmp1": ["quay.io/openstack.kolla/cron:T", "quay.io/openstack.kolla/nova-compute:T"], "mon1": []}}
    images = image_set(answer)
    assert (images.kolla_ansible, images.registry, images.namespace) == ("23.0.0", "quay.io", "openstack.kolla")
    assert images.hosts == {
        "cmp1": (PulledImage("quay.io", Image("openstack.kolla/cron", "T")),
                 PulledImage("quay.io", Image("openstack.kolla/nova-compute", "T"))),
        "mon1": (),
    }


def executable(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(0o755)
    return path


def test_a_configured_virtualenv_gives_its_python(tmp_path: Path) -> None:
    python = executable(tmp_path / "venv" / "bin" / "python", "")
    assert kolla_python(str(tmp_path / "venv")) == str(python)
    with pytest.raises(KollaImagesError, match=rf"^{tmp_path}/nowhere: no bin/python there; images.kolla_ansible names"):
        kolla_python(str(tmp_path / "nowhere"))


def test_without_a_virtualenv_kolla_ansible_must_be_on_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(KollaImagesError) as raised:
        kolla_python(None)
    assert str(raised.value) == f"kolla-ansible not found on PATH; {SET_IT}"


@pytest.mark.parametrize(
    "first_lines",
    [
        "#!{python}\n",
        "#!/usr/bin/env python3\n",
        "#!/bin/sh\n'''exec' \"{python}\" \"$0\" \"$@\"\n' '''\n",  # pip's form for a long path
    ],
)
def test_kolla_ansible_on_path_gives_the_python_its_script_starts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, first_lines: str
) -> None:
    python = executable(tmp_path / "bin" / "python3", "")
    executable(tmp_path / "bin" / "kolla-ansible", first_lines.format(python=python) + "import sys\n")
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    assert kolla_python(None) == str(python)


@pytest.mark.parametrize(
    ("script", "expected"),
    [
        ("#!/nowhere/python3\n", r": its Python /nowhere/python3 is missing; "),
        ("echo not a python script\n", r": no #! line naming its Python; "),
        ("#!/bin/sh\nexec /opt/kolla/bin/kolla-ansible \"$@\"\n", r": started by /bin/sh, not by a Python; "),
    ],
)
def test_a_kolla_ansible_without_a_python_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, script: str, expected: str
) -> None:
    executable(tmp_path / "kolla-ansible", script)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(KollaImagesError, match=rf"^{tmp_path}/kolla-ansible{expected}{SET_IT}$"):
        kolla_python(None)


def test_the_payload_gets_the_request_on_stdin_and_its_answer_is_returned(tmp_path: Path) -> None:
    fake = executable(tmp_path / "python", f"#!/bin/sh\necho \"$@\" > {tmp_path}/args\ncat > {tmp_path}/stdin\n"
                      "echo 'a warning'\necho '{\"kolla_ansible\": \"23.0.0\", \"hosts\": {}}'\n")
    answer = run_payload(str(fake), {"inventory": ["/x"]}, timeout=10)
    assert answer == {"kolla_ansible": "23.0.0", "hosts": {}}
    assert json.loads((tmp_path / "stdin").read_text()) == {"inventory": ["/x"]}
    assert (tmp_path / "args").read_text().split() == [str(PAYLOAD)]


@pytest.mark.parametrize(
    ("script", "expected"),
    [
        ("echo '{\"error\": \"inventory /x/multinode: not found\"}'; exit 1", "^inventory /x/multinode: not found$"),
        ("echo Traceback >&2; echo 'ImportError: boom' >&2; exit 1", r": no answer \(exit 1: ImportError: boom\)$"),
        ("sleep 5", r": no image set from kolla-ansible within 0.3 s$"),
    ],
)
def test_a_payload_that_fails_is_one_line(tmp_path: Path, script: str, expected: str) -> None:
    fake = executable(tmp_path / "python", f"#!/bin/sh\n{script}\n")
    with pytest.raises(KollaImagesError, match=expected):
        run_payload(str(fake), {}, timeout=0.3)


def test_an_interpreter_that_cannot_run_is_named(tmp_path: Path) -> None:
    with pytest.raises(KollaImagesError, match=rf"^{tmp_path}/python: cannot run it \(No such file or directory\)$"):
        run_payload(str(tmp_path / "python"), {}, timeout=10)


def test_a_python_without_kolla_ansible_says_so() -> None:
    # This tool's own Python: the real payload, which stops before importing Ansible.
    with pytest.raises(KollaImagesError) as raised:
        run_payload(sys.executable, {"inventory": ["/x"]}, timeout=30)
    assert str(raised.value) == f"{sys.executable}: kolla-ansible is not installed for this Python"


def test_a_python_too_old_for_kolla_ansible_says_which_it_needs(monkeypatch: pytest.MonkeyPatch) -> None:
    kolla = SimpleNamespace(version="23.0.0", metadata={"Requires-Python": ">=3.99"})
    monkeypatch.setattr(metadata, "distribution", lambda name: kolla)
    running = f"{sys.version_info[0]}.{sys.version_info[1]}"
    with pytest.raises(payload.Failure) as raised:
        payload.kolla_ansible_version()
    assert str(raised.value) == f"{sys.executable}: Python {running} is too old for kolla-ansible 23 (needs >= 3.99)"


def test_an_ansible_core_too_old_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(metadata, "distribution", lambda name: SimpleNamespace(version="20.1.0", metadata={}))
    monkeypatch.setattr(metadata, "version", lambda name: "2.17.4")
    with pytest.raises(payload.Failure, match=r": ansible-core 2.17.4 is too old here \(needs >= 2.19\)$"):
        payload.kolla_ansible_version()


def test_a_request_names_what_is_missing(tmp_path: Path) -> None:
    with pytest.raises(payload.Failure, match="^no inventory given$"):
        payload.request_paths({})
    with pytest.raises(payload.Failure, match="^inventory /nowhere/multinode: not found$"):
        payload.request_paths({"inventory": ["/nowhere/multinode"]})
    with pytest.raises(payload.Failure, match=r"^/nowhere/kolla: not found \(kolla-ansible's configuration directory\)$"):
        payload.request_paths({"inventory": [str(tmp_path)], "config_dir": "/nowhere/kolla"})
    assert payload.request_paths({"inventory": [str(tmp_path)], "config_dir": str(tmp_path)}) == ([str(tmp_path)], str(tmp_path))


def test_the_payload_answers_one_json_line_and_fails_with_status_1(monkeypatch: pytest.MonkeyPatch,
                                                                   capsys: pytest.CaptureFixture) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO("not json"))
    assert payload.main() == 1
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 1 and json.loads(out[0])["error"].startswith("JSONDecodeError: ")


def test_the_kolla_venv_is_reused_while_its_stamp_names_the_pins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    venv = tmp_path / "kolla-ansible-venv"
    executable(venv / "bin" / "kolla-ansible", "")
    (venv / kolla_env.STAMP).write_text("\n".join(kolla_env.PINS) + "\n")
    monkeypatch.setenv("KOLLA_LAB_ROOT", str(tmp_path))
    built: list[Path] = []
    monkeypatch.setattr(kolla_env, "build", built.append)
    assert kolla_env.kolla_venv() == venv and built == []
    (venv / kolla_env.STAMP).write_text("kolla-ansible==22.0.0\nansible==13.0.0\n")
    assert kolla_env.kolla_venv() == venv and built == [venv]
