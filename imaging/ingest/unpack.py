"""Reading a zip a patient uploaded (usually a whole CD) without trusting anything in it.

The central directory is checked before a single byte is unpacked, so a refused archive stores
nothing: too many entries, too much data once unpacked, or packed so tightly it can only be a
zip bomb. Entries are then checked one by one: names that climb out of the archive (``../``,
absolute paths, drive letters) and symbolic links are skipped. Each entry is streamed in 1 MiB
pieces into a scratch file the caller gives, so memory stays bounded however large it is.

Nested archives are not opened here: the caller sees a zip member like any other file and
refuses it when it sniffs a zip inside. A tar (how the browser sends a batch of a folder drop)
is listed by :mod:`imaging.ingest.tar` into the same :class:`ArchiveListing`.
"""

from __future__ import annotations

import posixpath
import re
import stat
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO, Any, BinaryIO, Protocol

from imaging.ingest import messages

MiB = 1024 * 1024
GiB = 1024 * MiB
CHUNK = 1 * MiB

_DRIVE = re.compile(r"^[A-Za-z]:")


@dataclass(frozen=True)
class ArchiveLimits:
    """What we accept in one archive. A full DVD of DICOM is ~4.7 GB in ~10,000 files."""

    max_entries: int = 20_000
    max_total_bytes: int = 20 * GiB
    # Whole archive: declared unpacked size over the archive's own size. DICOM with its black
    # borders deflates 2-5x; a bomb of zeros deflates about 1000x.
    max_ratio: float = 100.0
    # One entry, once it is large enough for its ratio to mean anything.
    max_entry_ratio: float = 200.0
    ratio_floor_bytes: int = 1 * MiB


DEFAULT_LIMITS = ArchiveLimits()


class ArchiveRefused(Exception):
    """The whole archive is refused; nothing in it was unpacked."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(code)
        self.code = code
        self.message = message


class EntryRefused(Exception):
    """One entry is refused while it is unpacked (it lied about its size)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(code)
        self.code = code
        self.message = message


class Archive(Protocol):
    """What entries are read through: a :class:`zipfile.ZipFile`, or a listed tar."""

    def open(self, name: Any, /) -> IO[bytes]: ...


@dataclass(frozen=True)
class Entry:
    path: str  # normalised, "/"-separated, relative, never with ".."
    size: int  # declared unpacked size (zipfile never yields more than this)
    info: Any  # what the archive's open() takes: a zipfile.ZipInfo, or a tar's member


@dataclass(frozen=True)
class EntryProblem:
    path: str
    code: str
    message: str


@dataclass
class ArchiveListing:
    archive: Archive
    entries: list[Entry] = field(default_factory=list)
    problems: list[EntryProblem] = field(default_factory=list)


def entry_path_normalise(name: str) -> str | None:
    """The safe relative path of an entry name, or None if it would land outside the archive."""
    if "\x00" in name:
        return None
    name = name.replace("\\", "/")
    if name.startswith("/") or _DRIVE.match(name):
        return None
    parts = [part for part in name.split("/") if part not in ("", ".")]
    if any(part == ".." for part in parts):
        return None
    return posixpath.join(*parts) if parts else ""


def _is_symlink(info: zipfile.ZipInfo) -> bool:
    mode = info.external_attr >> 16
    return info.create_system == 3 and stat.S_ISLNK(mode)


def quietly_ignored(path: str) -> bool:
    # macOS adds resource forks under __MACOSX/ when it zips a folder; they are not the CD's.
    return path.startswith("__MACOSX/") or posixpath.basename(path).startswith("._")


def archive_open(fileobj: BinaryIO, size: int, limits: ArchiveLimits = DEFAULT_LIMITS) -> ArchiveListing:
    """Open a zip and list the entries worth unpacking, or raise :class:`ArchiveRefused`.

    Precondition: ``fileobj`` is seekable (zip's directory is at its end) and ``size`` is its
    length in bytes.
    """
    try:
        archive = zipfile.ZipFile(fileobj)
        infos = archive.infolist()
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError):
        raise ArchiveRefused("unreadable", messages.ARCHIVE_DAMAGED) from None
    if len(infos) > limits.max_entries:
        raise ArchiveRefused(
            "archive_limit", messages.ARCHIVE_TOO_MANY_FILES.format(limit=limits.max_entries)
        )
    declared = sum(info.file_size for info in infos)
    if declared > limits.max_total_bytes:
        raise ArchiveRefused(
            "archive_limit",
            messages.ARCHIVE_TOO_LARGE.format(limit_gb=limits.max_total_bytes // GiB),
        )
    if declared > limits.ratio_floor_bytes and declared > limits.max_ratio * max(size, 1):
        raise ArchiveRefused("unsafe_archive", messages.ARCHIVE_BOMB)

    listing = ArchiveListing(archive=archive)
    for info in infos:
        path = entry_path_normalise(info.filename)
        if path is None or _is_symlink(info):
            listing.problems.append(
                EntryProblem(path=info.filename[:1000], code="unsafe_archive", message=messages.UNSAFE_ENTRY)
            )
            continue
        if info.is_dir() or not path or quietly_ignored(path):
            continue
        if info.file_size > limits.ratio_floor_bytes and info.file_size > limits.max_entry_ratio * max(
            info.compress_size, 1
        ):
            listing.problems.append(
                EntryProblem(path=path, code="unsafe_archive", message=messages.ARCHIVE_ENTRY_BOMB)
            )
            continue
        listing.entries.append(Entry(path=path, size=info.file_size, info=info))
    return listing


def entry_extract(archive: Archive, entry: Entry, scratch: BinaryIO) -> int:
    """Unpack ``entry`` into ``scratch`` (emptied first), streamed; return the bytes written.

    Raises :class:`EntryRefused` if the entry yields more than it declared (zipfile already
    stops there; this is a second lock on the same door), and whatever zipfile raises for a
    damaged, encrypted or oddly compressed entry.
    """
    scratch.seek(0)
    scratch.truncate()
    written = 0
    with archive.open(entry.info) as source:
        while chunk := source.read(CHUNK):
            written += len(chunk)
            if written > entry.size:
                raise EntryRefused("unsafe_archive", messages.ARCHIVE_ENTRY_BOMB)
            scratch.write(chunk)
    scratch.flush()
    scratch.seek(0)
    return written


def entry_read(archive: Archive, entry: Entry) -> bytes:
    """Unpack a small entry into memory (precondition: its declared size is small)."""
    with archive.open(entry.info) as source:
        data = source.read(entry.size + 1)
    if len(data) > entry.size:
        raise EntryRefused("unsafe_archive", messages.ARCHIVE_ENTRY_BOMB)
    return data


def entries_in_order(entries: list[Entry], first: list[str]) -> Iterator[Entry]:
    """``entries`` with those whose path (case-insensitively) is in ``first`` first, in that order.

    Used to walk a CD the way its DICOMDIR lists it; everything else follows in archive order.
    """
    by_path = {entry.path.upper(): entry for entry in entries}
    done: set[str] = set()
    for path in first:
        entry = by_path.get(path.upper())
        if entry is not None and entry.path.upper() not in done:
            done.add(entry.path.upper())
            yield entry
    for entry in entries:
        if entry.path.upper() not in done:
            yield entry
