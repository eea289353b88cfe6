"""The import rules hold on fabfile/, and the checker catches each kind of violation planted in a copy."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.architecture import MAX_LINES, violations

PACKAGE = Path(__file__).resolve().parents[2] / "fabfile"


def test_the_package_keeps_its_import_rules():
    assert violations(PACKAGE) == []


@pytest.fixture
def planted(tmp_path: Path):
    """A copy of the package to plant one violation in."""
    copy = tmp_path / "fabfile"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))

    def plant(module: str, text: str) -> list[str]:
        with (copy / module).open("a") as handle:
            handle.write(text)
        return violations(copy)

    return plant


@pytest.mark.parametrize(
    ("module", "text", "expected"),
    [
        pytest.param("transport/apply.py", "from ..engine.runner import Runner\n", "the transport layer imports engine.runner", id="transport-imports-engine"),
        pytest.param("engine/runner.py", "from ..tasks import cli\n", "the engine layer imports tasks.cli", id="engine-imports-task"),
        pytest.param("engine/report.py", "from ..actions import deploy\n", "the engine layer imports actions.deploy", id="engine-imports-action"),
        pytest.param("registry/container.py", "from ..transport.apply import apply_script\n", "the registry layer imports transport.apply", id="planner-imports-shell-builder"),
        pytest.param("images/pull_plan.py", "from ..engine.runner import Runner\n", "the images layer imports engine.runner", id="planner-imports-fan-out"),
        pytest.param("registry/reach.py", "import paramiko\n", "the registry layer imports paramiko", id="planner-imports-ssh"),
        pytest.param("actions/pull.py", "from ..engine.runner import Runner\n", "an action imports engine.runner", id="action-imports-runner"),
        pytest.param("payload/manifests.py", "from ..model.marks import MARK\n", "a program sent to hosts imports model.marks", id="payload-imports-the-tool"),
        pytest.param("model/units.py", "def later():\n    from . import plan\n", "imports model.plan inside a function", id="function-local-import"),
        pytest.param("images/model.py", "from .archive import Layout\n", "import cycle: images.archive -> images.model", id="cycle"),
    ],
)
def test_a_planted_violation_is_named(planted, module, text, expected):
    found = planted(module, text)
    assert any(expected in line for line in found), found


def test_a_module_over_the_limit_is_named(planted):
    found = planted("model/units.py", "\n" * MAX_LINES)
    assert any("model/units.py" in line and "lines (more than" in line for line in found), found
