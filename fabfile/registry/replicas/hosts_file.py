"""The one /etc/hosts line this tool owns: the registry's name, mapped to the node's instance.

The line ends with a marker comment, so it is found again and edited in place;
every other line stays byte for byte. kolla-ansible's bootstrap-servers keeps
its own hosts between ``# BEGIN ANSIBLE GENERATED HOSTS`` and ``# END ...``
markers (blockinfile) and rewrites only that block: our line stays outside it.
"""

from __future__ import annotations

from ...model.plan import FileChange

ETC_HOSTS = "/etc/hosts"
MARKER = "# kolla-registry"
# blockinfile's markers, as kolla-ansible's etc-hosts role writes them ("# BEGIN ..." / "# END ...").
_BLOCK_BEGIN, _BLOCK_END = "# BEGIN ", "# END "


class HostsFileError(Exception):
    """/etc/hosts maps the name some other way; the message names the line."""


def entry(address: str, hostname: str) -> str:
    """Our line, without its newline."""
    return f"{address} {hostname}  {MARKER}"


def owned(line: str) -> bool:
    return line.rstrip().endswith(MARKER)


def current_address(text: str | None, hostname: str) -> str:
    """The address our line maps ``hostname`` to now, or ""."""
    for line in (text or "").splitlines():
        words = line.split("#", 1)[0].split()
        if owned(line) and len(words) >= 2 and hostname in words[1:]:
            return words[0]
    return ""


def with_entry(text: str | None, address: str, hostname: str) -> str:
    """``text`` with our one line mapping ``hostname`` to ``address``: in place, else at the end, never inside
    a managed block; other lines kept byte for byte. HostsFileError when another line maps the name."""
    lines = (text or "").splitlines(keepends=True)
    wanted = entry(address, hostname) + "\n"
    kept: list[str] = []
    inside = False
    placed = False
    for number, line in enumerate(lines, 1):
        stripped = line.strip()
        if stripped.startswith(_BLOCK_BEGIN):
            inside = True
        elif stripped.startswith(_BLOCK_END):
            inside = False
        if owned(line):
            if not placed and not inside:
                kept.append(wanted)
                placed = True
            continue
        words = line.split("#", 1)[0].split()
        if hostname in (word.lower() for word in words[1:]):
            raise HostsFileError(f"{ETC_HOSTS} line {number} maps {hostname} already ({stripped!r}): remove it")
        kept.append(line)
    if not placed:
        if kept and not kept[-1].endswith("\n"):
            kept[-1] += "\n"
        kept.append(wanted)
    return "".join(kept)


def hosts_change(text: str | None, address: str, hostname: str) -> FileChange | None:
    """The change that maps ``hostname`` to ``address``, or None when /etc/hosts already does."""
    after = with_entry(text, address, hostname)
    return None if after == text else FileChange(ETC_HOSTS, text, after)
