"""A file or a folder from this machine into a file on a host, streamed on one exec channel.

Not SFTP: paramiko's SFTP client makes every write a request the host answers (and a tar
went through it 16 KiB a write); a ``cat`` reading the channel's stdin takes the bytes as
fast as the connection carries them (on the lab, 360 MB: 156 MB/s against SFTP's 132 for
a file, and about 80 for the folder's tar). The host says how many bytes it wrote, and the
upload fails unless that is every byte sent.
"""

from __future__ import annotations

import os
import shlex
import tarfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from fabric import Connection

from .channel import SEND_BUFFER, CommandTimeout, execute

# Called with (bytes sent, bytes in all) as an upload goes.
Progress = Callable[[int, int], None] | None


class UploadError(Exception):
    """The host did not write the whole file; the message says what it said."""


def send_file(connection: Connection, local: str, remote: str, timeout: float, progress: Progress = None) -> int:
    """Write ``local`` (a file, or a folder as an uncompressed tar of its contents) to ``remote`` on the host,
    as the login user; the bytes written. ``remote``'s folder must be private already (the run's ``mktemp -d``).
    Raises CommandTimeout when the host takes nothing for ``timeout`` s, UploadError when it wrote less."""
    counted = _Counted(progress, _size_of(local))
    write = write_folder_tar if os.path.isdir(local) else _write_file

    def produce(out: BinaryIO) -> None:
        write(local, counted.into(out))

    quoted = shlex.quote(remote)
    done = execute(connection, f"cat > {quoted} && wc -c < {quoted}", produce, timeout)
    written = done.stdout.strip()
    if not done.ok or written != str(counted.sent):
        said = done.stderr.strip().splitlines()[-1:] or [f"{written or 'no'} bytes written of {counted.sent}"]
        raise UploadError(said[0])
    return counted.sent


def _write_file(local: str, out: BinaryIO) -> None:
    with open(local, "rb") as source:
        while chunk := source.read(SEND_BUFFER):
            out.write(chunk)


def write_folder_tar(folder: str, out) -> None:
    """``folder``'s contents as an uncompressed tar stream into the file ``out`` (no temporary file)."""
    with tarfile.open(fileobj=out, mode="w|") as archive:
        archive.copybufsize = SEND_BUFFER  # tarfile's own default, 16 KiB, is a write per 16 KiB
        for name in sorted(os.listdir(folder)):
            archive.add(os.path.join(folder, name), arcname=name)


def _size_of(local: str) -> int:
    if not os.path.isdir(local):
        return os.path.getsize(local)
    return sum(entry.stat().st_size for entry in Path(local).rglob("*") if entry.is_file())


class _Counted:
    """Counts the bytes written through it, for a progress callback (a tar's headers make ``sent`` pass ``total``)."""

    def __init__(self, progress: Progress, total: int) -> None:
        self.progress, self.total, self.sent = progress, total, 0
        self.out: BinaryIO | None = None

    def into(self, out: BinaryIO) -> _Counted:
        self.out = out
        return self

    def write(self, data: bytes) -> int:
        self.out.write(data)
        self.sent += len(data)
        if self.progress:
            self.progress(min(self.sent, self.total), self.total)
        return len(data)


__all__ = ["CommandTimeout", "UploadError", "send_file", "write_folder_tar"]
