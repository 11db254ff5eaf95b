"""Reading an uncompressed tar without trusting anything in it: how the browser sends a batch of
a folder drop (frontend/src/intake/tarbatch.js), each file as it is behind a 512-byte header.

A strict reader of our own rather than :mod:`tarfile`, which accepts far more than a batch ever
holds (GNU sparse files, multi-volume archives, base-256 sizes, extended headers of any length
read into memory). Here every header's checksum is checked, an extended header (pax, or a GNU
long name) may only name the next file and is at most :data:`MAX_EXTENDED_HEADER` bytes, and only
regular files and folders are taken: links, devices and the rest are skipped as unsafe. A file
is read straight from its place in the archive, so nothing is unpacked anywhere first.

The listing obeys the same :class:`~imaging.ingest.unpack.ArchiveLimits` as a zip's (number of
files, total size); a tar is never compressed, so it has no ratio to check.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import IO, Any, BinaryIO

from imaging.ingest import messages
from imaging.ingest.unpack import (
    ArchiveLimits,
    ArchiveListing,
    ArchiveRefused,
    Entry,
    EntryProblem,
    GiB,
    entry_path_normalise,
    quietly_ignored,
)

BLOCK = 512
MAX_EXTENDED_HEADER = 64 * 1024
_REGULAR = (b"0", b"\x00", b"7")  # "7": a contiguous file, read as a regular one
_FOLDER = b"5"
_PAX = b"x"
_PAX_GLOBAL = b"g"
_GNU_LONG_NAME = b"L"


def is_tar(head: bytes) -> bool:
    """Whether a file's first 512 bytes are a POSIX (ustar or pax) tar header."""
    return len(head) >= BLOCK and head[257:262] == b"ustar" and _checksum_ok(head[:BLOCK])


@dataclass(frozen=True)
class TarMember:
    offset: int  # where the file's bytes start in the archive
    size: int


class TarArchive:
    """Opens members of a listed tar: a window onto the archive's own bytes."""

    def __init__(self, fileobj: BinaryIO) -> None:
        self.fileobj = fileobj

    def open(self, member: TarMember, /) -> IO[bytes]:
        return io.BufferedReader(_Window(self.fileobj, member))


class _Window(io.RawIOBase):
    """A member's bytes, read from the archive as they are asked for (never past its end)."""

    def __init__(self, fileobj: BinaryIO, member: TarMember) -> None:
        self.fileobj = fileobj
        self.position = member.offset
        self.end = member.offset + member.size

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1, /) -> bytes:
        left = self.end - self.position
        if size is None or size < 0 or size > left:
            size = left
        self.fileobj.seek(self.position)
        data = self.fileobj.read(size)
        self.position += len(data)
        return data

    def readinto(self, buffer: Any, /) -> int:
        data = self.read(len(memoryview(buffer)))
        memoryview(buffer).cast("B")[: len(data)] = data
        return len(data)


def _checksum_ok(header: bytes) -> bool:
    stored = _octal(header[148:156])
    if stored is None:
        return False
    unsigned = sum(header[:148]) + 8 * 0x20 + sum(header[156:])
    return stored == unsigned


def _octal(field: bytes) -> int | None:
    text = field.split(b"\x00", 1)[0].strip(b" ")
    if not text or any(byte not in b"01234567" for byte in text):
        return None
    return int(text, 8)


def _pax_path(data: bytes) -> str | None:
    """The ``path`` of a pax extended header's records, or None (malformed records: None too)."""
    path = None
    position = 0
    while position < len(data):
        space = data.find(b" ", position)
        if space < 0:
            break
        try:
            length = int(data[position:space])
        except ValueError:
            return None
        record = data[space + 1 : position + length]
        if length <= 0 or position + length > len(data) or not record.endswith(b"\n"):
            return None
        keyword, _, value = record[:-1].partition(b"=")
        if keyword == b"path":
            path = value.decode("utf-8", "replace")
        position += length
    return path


def tar_open(fileobj: BinaryIO, size: int, limits: ArchiveLimits) -> ArchiveListing:
    """List a tar's files worth reading, or raise :class:`ArchiveRefused` (nothing read yet).

    Precondition: ``fileobj`` is seekable and ``size`` is its length in bytes.
    """
    listing = ArchiveListing(archive=TarArchive(fileobj))
    position = 0
    long_name: str | None = None
    members = 0
    declared = 0
    while True:
        fileobj.seek(position)
        header = fileobj.read(BLOCK)
        if len(header) < BLOCK:
            raise ArchiveRefused("unreadable", messages.ARCHIVE_DAMAGED)
        if header == b"\x00" * BLOCK:
            break  # the end (a second zero block follows)
        member_size = _octal(header[124:136])
        if not _checksum_ok(header) or member_size is None:
            raise ArchiveRefused("unreadable", messages.ARCHIVE_DAMAGED)
        start = position + BLOCK
        position = start + -(-member_size // BLOCK) * BLOCK
        if start + member_size > size:
            raise ArchiveRefused("unreadable", messages.ARCHIVE_DAMAGED)
        kind = header[156:157]
        if kind in (_PAX, _PAX_GLOBAL, _GNU_LONG_NAME):
            if member_size > MAX_EXTENDED_HEADER:
                raise ArchiveRefused("unreadable", messages.ARCHIVE_DAMAGED)
            fileobj.seek(start)
            data = fileobj.read(member_size)
            if kind == _PAX:
                long_name = _pax_path(data)
            elif kind == _GNU_LONG_NAME:
                long_name = data.split(b"\x00", 1)[0].decode("utf-8", "replace")
            continue
        name = long_name
        long_name = None
        if name is None:
            prefix = header[345:500].split(b"\x00", 1)[0]
            base = header[:100].split(b"\x00", 1)[0]
            name = (prefix + b"/" + base if prefix else base).decode("utf-8", "replace")
        members += 1
        if members > limits.max_entries:
            raise ArchiveRefused(
                "archive_limit", messages.ARCHIVE_TOO_MANY_FILES.format(limit=limits.max_entries)
            )
        if kind == _FOLDER:
            continue
        path = entry_path_normalise(name)
        if path is None or kind not in _REGULAR:
            listing.problems.append(
                EntryProblem(path=name[:1000], code="unsafe_archive", message=messages.UNSAFE_ENTRY)
            )
            continue
        declared += member_size
        if declared > limits.max_total_bytes:
            raise ArchiveRefused(
                "archive_limit", messages.ARCHIVE_TOO_LARGE.format(limit_gb=limits.max_total_bytes // GiB)
            )
        if path and not quietly_ignored(path):
            listing.entries.append(Entry(path=path, size=member_size, info=TarMember(start, member_size)))
    return listing
