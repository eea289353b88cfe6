"""An OCI image layout being written: ``oci-layout``, ``index.json`` and ``blobs/sha256/HEX``, each blob once.

Run in the export program (after blobcopy.py). A folder takes blobs in
parallel, each streamed into a temporary file beside its place, hashed on the
way, and renamed into place only when its sha256 and size are right; a tar
takes them one at a time, each streamed into a new member, the tar cut back to
before it when it is not right. Either resumes: what is there and hashes to
its name is kept, anything else goes. ``index.json`` comes last: a layout that
has one is whole. Standard library only, no f-strings (see registry_client.py).
"""

# ruff: noqa: UP032 - str.format on purpose: f-strings need Python 3.6 on the host

import hashlib
import io
import json
import os
import tarfile
import threading

from .blobcopy import CHUNK, CopyError  # dropped on the host: defined above

LAYOUT = b'{"imageLayoutVersion": "1.0.0"}\n'


def blob_name(digest: str) -> str:
    return "blobs/sha256/" + digest.split(":", 1)[1]


def hashed(stream, size: int) -> str:
    """``sha256:HEX`` of the first ``size`` bytes of ``stream``, or "" when there are fewer."""
    digest, left = hashlib.sha256(), size
    while left > 0:
        chunk = stream.read(min(CHUNK, left))
        if not chunk:
            return ""
        digest.update(chunk)
        left -= len(chunk)
    return "sha256:" + digest.hexdigest()


class FolderLayout:
    """A layout in a folder: blobs written in parallel, each renamed into place once it is right."""

    parallel = True

    def __init__(self, path: str) -> None:
        self.path = path
        os.makedirs(os.path.join(path, "blobs", "sha256"), exist_ok=True)

    def has(self, digest: str, size: int) -> bool:
        """Whether the blob is there whole (its sha256 checked); a wrong one is removed."""
        path = os.path.join(self.path, blob_name(digest))
        if not os.path.isfile(path) or os.path.islink(path):
            return False
        with open(path, "rb") as stream:
            right = os.path.getsize(path) == size and hashed(stream, size) == digest
        if not right:
            os.unlink(path)
        return right

    def read(self, digest: str) -> bytes:
        """A (small) blob the layout holds: an image's config."""
        with open(os.path.join(self.path, blob_name(digest)), "rb") as stream:
            return stream.read()

    def put(self, digest: str, size: int, chunks, sent=None) -> None:
        """Stream ``chunks`` into place as blob ``digest`` of ``size`` bytes; nothing is left if they are wrong."""
        path = os.path.join(self.path, blob_name(digest))
        partial = "{}.{}.partial".format(path, threading.get_ident())
        check, count = hashlib.sha256(), 0
        try:
            with open(partial, "wb") as out:
                for chunk in chunks:
                    check.update(chunk)
                    count += len(chunk)
                    out.write(chunk)
                    if sent is not None:
                        sent(len(chunk))
                out.flush()
                os.fsync(out.fileno())
            got = "sha256:" + check.hexdigest()
            if got != digest or count != size:
                raise CopyError("{}: sha256 {} ({} bytes), expected {} ({} bytes)".format(digest, got, count, digest, size))
            os.replace(partial, path)
        finally:
            if os.path.exists(partial):
                os.unlink(partial)

    def finish(self, index: dict, extra: dict) -> None:
        """``oci-layout``, the ``extra`` files ({name: bytes}), then ``index.json``: each replaced whole."""
        for name, body in [("oci-layout", LAYOUT)] + sorted(extra.items()) + [("index.json", _index(index))]:
            target = os.path.join(self.path, name)
            with open(target + ".partial", "wb") as out:
                out.write(body)
                out.flush()
                os.fsync(out.fileno())
            os.replace(target + ".partial", target)

    def close(self) -> None:
        return None


class TarLayout:
    """A layout as one tar: each blob a member, appended one at a time; cut back to its last whole member."""

    parallel = False

    def __init__(self, path: str) -> None:
        self.path = path
        self.members = {}
        end = 0
        size = os.path.getsize(path) if os.path.exists(path) else 0
        if size:
            try:
                with tarfile.open(path, "r:") as found:
                    for member in found:
                        if member.offset_data + member.size > size:
                            break  # cut off by an interruption
                        self.members[member.name] = member
                        end = member.offset_data + -(-member.size // 512) * 512
            except tarfile.TarError as error:
                raise CopyError("{}: not a tar (an earlier bundle?): {}".format(path, error), True) from None
        # Both stay open, member after member, until close().
        self.stream = open(path, "r+b" if os.path.exists(path) else "w+b")  # noqa: SIM115
        self.stream.truncate(end)
        self.stream.seek(end)
        self.tar = tarfile.open(fileobj=self.stream, mode="w", format=tarfile.PAX_FORMAT)  # noqa: SIM115
        self.verified = set()

    def has(self, digest: str, size: int) -> bool:
        """Whether a whole member holds the blob (its sha256 checked)."""
        member = self.members.get(blob_name(digest))
        if member is None or not member.isfile() or member.size != size:
            return False
        if digest not in self.verified:
            with open(self.path, "rb") as stream:
                stream.seek(member.offset_data)
                if hashed(stream, size) != digest:
                    return False
            self.verified.add(digest)
        return True

    def read(self, digest: str) -> bytes:
        """A (small) blob the tar holds: an image's config."""
        member = self.members[blob_name(digest)]
        self.stream.flush()
        with open(self.path, "rb") as stream:
            stream.seek(member.offset_data)
            return stream.read(member.size)

    def put(self, digest: str, size: int, chunks, sent=None) -> None:
        """Append blob ``digest`` as a member, hashed on the way; the tar is cut back when it is wrong."""
        start = self.stream.tell()
        reader = _Chunks(chunks, sent)
        info = tarfile.TarInfo(blob_name(digest))
        info.size, info.mode = size, 0o644
        try:
            self.tar.addfile(info, reader)
        except (OSError, ValueError, CopyError):
            self._cut(start)
            raise
        got = "sha256:" + reader.check.hexdigest()
        if got != digest or reader.count != size:
            self._cut(start)
            raise CopyError("{}: sha256 {} ({} bytes), expected {} ({} bytes)".format(digest, got, reader.count, digest, size))
        self.verified.add(digest)
        # Where its bytes are (a tar being written does not say): before the padding that ends it.
        info.offset, info.offset_data = start, self.tar.offset - -(-size // 512) * 512
        self.members[info.name] = info

    def _cut(self, start: int) -> None:
        self.stream.truncate(start)
        self.stream.seek(start)
        self.tar.offset = start
        self.tar.members = [m for m in self.tar.members if m.offset < start]

    def finish(self, index: dict, extra: dict) -> None:
        """``oci-layout``, the ``extra`` files, then ``index.json`` appended (a reader takes a name's last member)."""
        for name, body in [("oci-layout", LAYOUT)] + sorted(extra.items()) + [("index.json", _index(index))]:
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(body), 0o644
            self.tar.addfile(info, io.BytesIO(body))

    def close(self) -> None:
        self.tar.close()
        self.stream.flush()
        os.fsync(self.stream.fileno())
        self.stream.close()


class _Chunks:
    """Chunks as a file object for tarfile (which reads exactly the member's size), hashed and counted."""

    def __init__(self, chunks, sent=None) -> None:
        self.chunks = iter(chunks)
        self.sent = sent
        self.check = hashlib.sha256()
        self.count = 0
        self.buffer, self.at = b"", 0

    def read(self, size: int = -1) -> bytes:
        parts, wanted = [], size
        while wanted != 0:
            if self.at >= len(self.buffer):
                chunk = next(self.chunks, None)
                if chunk is None:
                    break
                self.check.update(chunk)
                self.count += len(chunk)
                if self.sent is not None:
                    self.sent(len(chunk))
                self.buffer, self.at = chunk, 0
            take = len(self.buffer) - self.at if wanted < 0 else min(wanted, len(self.buffer) - self.at)
            parts.append(self.buffer[self.at : self.at + take])
            self.at += take
            wanted -= take if wanted > 0 else 0
        found = b"".join(parts)
        if size > 0 and len(found) < size:
            raise CopyError("the blob ended after {} bytes".format(self.count))
        return found


def _index(index: dict) -> bytes:
    return (json.dumps(index, indent=2, sort_keys=True) + "\n").encode()
