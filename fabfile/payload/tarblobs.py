"""Blobs read in place from an archive uploaded to the deployment host; sent with blobcopy.py.

Standard library only, no f-strings (see registry_client.py). An uncompressed
tar is read at each member's offset, so that blobs go in parallel; a
compressed one is uncompressed next to itself once (gzip cannot seek).
"""

# ruff: noqa: UP032 - str.format on purpose: f-strings need Python 3.6 on the host

import bz2
import gzip
import os
import shutil
import tarfile

try:
    import lzma
except ImportError:  # a Python built without liblzma: only xz archives are out of reach
    lzma = None

from .blobcopy import CHUNK, CopyError, chunks_of  # dropped on the host: defined above it there


class TarBlobs:
    """Blobs read in place from an uploaded archive: its members' offsets, found once."""

    def __init__(self, path: str) -> None:
        self.path = plain(path)
        with tarfile.open(self.path, "r:") as archive:
            members = {member_name(m.name): m for m in archive.getmembers()}
        self.where = {}
        for name in members:
            target = resolve(members, name)
            if target.isfile():
                self.where[name] = (target.offset_data, target.size)

    def chunks(self, name: str):
        """The member's bytes in CHUNK pieces."""
        if name not in self.where:
            raise CopyError("{}: not in the archive".format(name), True)
        return self._read(*self.where[name])

    def _read(self, offset: int, size: int):
        with open(self.path, "rb") as stream:
            stream.seek(offset)
            yield from chunks_of(stream, size)


def resolve(members: dict, name: str):
    """The member ``name`` is, links followed: Docker 1.x saves a layer shared by two images once
    and links the other to it."""
    member = members[name]
    for _ in range(8):
        if member.issym():
            name = member_name(os.path.normpath(os.path.join(os.path.dirname(name), member.linkname)))
        elif member.islnk():
            name = member_name(member.linkname)
        else:
            break
        member = members.get(name, member)
    return member


def member_name(name: str) -> str:
    """A tar member's name without the ``./`` a tar made by hand puts in front."""
    while name.startswith("./"):
        name = name[2:]
    return name


def plain(path: str) -> str:
    """``path``, or an uncompressed copy next to it: blobs are read at their offsets."""
    with open(path, "rb") as stream:
        head = stream.read(6)
    for magic, opener in ((b"\x1f\x8b", gzip.open), (b"BZh", bz2.open), (b"\xfd7zXZ", lzma and lzma.open)):
        if head.startswith(magic) and opener:
            with opener(path, "rb") as packed, open(path + ".tar", "wb") as out:
                shutil.copyfileobj(packed, out, CHUNK)
            return path + ".tar"
    return path
