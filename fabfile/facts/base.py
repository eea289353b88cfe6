"""Sections and the one script that gathers them: a task asks for exactly the facts its planners read.

A ``Section`` pairs the shell that prints one fact (after its mark) with the
parser that reads it into ``HostFacts``, so nothing else crosses the wire.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import shlex
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from ..model import grammar
from ..model.facts import HostFacts
from ..model.marks import MARK, sections

PREAMBLE = f"""export LC_ALL=C
s() {{ printf '\\n{MARK} %s\\n' "$1"; }}"""


class Texts(dict):
    """Each section's text by its mark; ``output`` is all of it, for sections whose text holds marks."""

    output = ""


@dataclass(frozen=True)
class Section:
    """One fact: the shell that prints it after ``s NAME``, and the parser that reads it back."""

    name: str
    shell: str
    parse: Callable[[Texts, HostFacts], None]


def script(wanted: Iterable[Section]) -> str:
    """The shell that prints every wanted section; it always exits 0."""
    shells = dict.fromkeys(section.shell for section in wanted if section.shell)
    return "\n".join([PREAMBLE, *shells, "exit 0"]) + "\n"


def parse(output: str, wanted: Iterable[Section]) -> HostFacts:
    """The sections' output as ``HostFacts``."""
    texts = Texts(sections(output))
    texts.output = output
    facts = HostFacts()
    for section in wanted:
        section.parse(texts, facts)
    return facts


def fact(name: str, shell: str, store: Callable[[HostFacts, str], None]) -> Section:
    """A section that prints one thing after ``s NAME``; ``store`` puts its text into the facts."""

    def parse_into(texts: Texts, facts: HostFacts) -> None:
        store(facts, texts.get(name, ""))

    return Section(name, f"s {name}; {shell}", parse_into)


def version_word(text: str) -> str:
    """The first ``N.N[.N]`` of a ``--version`` line, or ""."""
    match = re.search(r"(\d+\.\d+(?:\.\d+)?)", text)
    return match.group(1) if match else ""


def first_json(text: str) -> dict | None:
    """The first object of a JSON object or list (``docker inspect`` prints a list), or None."""
    try:
        value = json.loads(text) if text.strip() else None
    except json.JSONDecodeError:
        return None
    if isinstance(value, list):
        return value[0] if value else None
    return value


# A glob the shell expands: a host path whose last part may hold ``*``.
_GLOB = re.compile(r"(?!.*/\.\./)/[A-Za-z0-9._+@:/-]*/[A-Za-z0-9._+@:*-]+")


def files(*paths: str, globs: Iterable[str] = ()) -> Section:
    """Regular files (``paths``, and what ``globs`` match) as base64, each its own ``file PATH`` mark;
    others are named as special. A glob that matches nothing adds nothing."""
    patterns = tuple(globs)
    for pattern in patterns:
        if not _GLOB.fullmatch(pattern):
            raise ValueError(f"not a glob this tool expands on a host: {pattern!r}")
    listed = " ".join([*(shlex.quote(path) for path in paths), *patterns])
    shell = f"""for f in {listed}; do
  if [ -f "$f" ]; then s "file $f"; base64 -w0 "$f"; echo; elif [ -e "$f" ]; then s "special $f"; fi
done"""
    return Section("files", shell, _files)


def _files(texts: Texts, facts: HostFacts) -> None:
    for name, body in texts.items():
        if name.startswith("file "):
            path = name[len("file ") :]
            if not grammar.matches(grammar.HOST_PATH, path):
                # A drop-in named with blanks or shell syntax: read by no planner, written by none.
                facts.unreadable[path] = "a file name this tool does not edit"
                continue
            raw = _decoded(body)
            try:
                facts.files[path] = raw.decode("utf-8")
            except UnicodeDecodeError:
                # Kept for the checks that only look; a planner must not edit what it cannot read.
                facts.files[path] = raw.decode("utf-8", "replace")
                facts.unreadable[path] = "not UTF-8 text"
        elif name.startswith("special "):
            facts.unreadable[name[len("special ") :]] = "not a regular file"


def _decoded(body: str) -> bytes:
    try:
        return base64.b64decode(body.strip(), validate=True)
    except binascii.Error:
        return b""
