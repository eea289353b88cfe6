"""Marks: how scripts on a host tell the tasks what happened, one ``MARK word ...`` line each.

Every script the tasks send prints its findings after ``MARK``; output
between marks is the commands' own. This module is the only reader of marks.
"""

from __future__ import annotations

from .paths import BACKUP_DIR

MARK = "::kolla-registry::"
# What the apply script exits with when a file changed since the facts were gathered: plan again.
CONFLICT_EXIT = 75
# The shell function scripts call to fail with a reason the recap shows.
FAIL_FUNCTION = f'fail() {{ echo "{MARK} fail $*"; exit 1; }}'


def marks(output: str, word: str = "") -> list[str]:
    """The text after ``MARK`` on each marked line (after ``MARK word `` when ``word`` is given)."""
    prefix = f"{MARK} {word} " if word else f"{MARK} "
    found = []
    for line in output.splitlines():
        if line.startswith(prefix):
            found.append(line[len(prefix) :])
        elif word and line == prefix.rstrip():
            found.append("")
    return found


def sections(output: str) -> dict[str, str]:
    """Each marked line starts a section named by its text; the lines up to the next mark are its body."""
    found: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in output.splitlines():
        if line.startswith(MARK):
            # A section printed twice (two tasks' sections ask for one file) is read once.
            current = found[line[len(MARK) :].strip()] = []
        elif current is not None:
            current.append(line)
    return {name: "\n".join(lines).strip("\n") for name, lines in found.items()}


def between(output: str, first: str, last: str) -> str | None:
    """The lines between the marks ``first`` and ``last`` (marks among them kept); None if either is missing."""
    lines = output.splitlines()
    try:
        start = lines.index(f"{MARK} {first}")
        end = lines.index(f"{MARK} {last}", start)
    except ValueError:
        return None
    return "\n".join(lines[start + 1 : end])


def failure_reason(stdout: str, stderr: str) -> str:
    """Why a script failed: its last ``fail`` mark, a rollback's story, or its last line."""
    failures = marks(stdout, "fail")
    if failures:
        return failures[-1]
    restored, lost = marks(stdout, "restored"), marks(stdout, "not-restored")
    if restored or lost:
        parts = [f"restored {', '.join(restored)} from backups"] if restored else []
        parts += [f"could NOT restore {', '.join(lost)} (backups: {BACKUP_DIR})"] if lost else []
        back = any(word.endswith("-after-rollback") for word in marks(stdout, "docker"))
        return f"Docker did not take the change; {'; '.join(parts)}; Docker {'running again' if back else 'NOT running'}"
    lines = [line for line in (stderr or stdout).strip().splitlines() if line.strip()]
    return lines[-1] if lines else "no output"
