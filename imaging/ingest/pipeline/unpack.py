"""The unpack step: every file of an upload read (a single file, or each entry of a zip of a CD,
in the order its DICOMDIR lists), sniffed, and parsed; DICOM files join the batch, anything
else becomes a problem of its upload. Archive safety (sizes, paths, ratios) is
:mod:`imaging.ingest.unpack`'s."""

from __future__ import annotations

import io
import logging
import posixpath
import struct
import tempfile
import uuid
import zipfile
from typing import BinaryIO

from imaging.ingest import messages
from imaging.ingest.dicom import (
    SNIFF_BYTES,
    VIEWER_EXTENSIONS,
    FileKind,
    FileRejected,
    PreambleZeroingReader,
    file_sniff,
    header_read,
)
from imaging.ingest.disc import disc_index_keep, disc_report_ingest
from imaging.ingest.pipeline.batch import BatchLost, failure_log
from imaging.ingest.pipeline.index import IndexSteps
from imaging.ingest.pipeline.store import IN_MEMORY_ENTRY_BYTES, PREAMBLE_ZEROS, PendingFile, moved_key
from imaging.ingest.reports import seekable_upload
from imaging.ingest.tar import TarMember, tar_open
from imaging.ingest.unpack import (
    Archive,
    ArchiveRefused,
    Entry,
    EntryRefused,
    archive_open,
    entries_in_order,
    entry_extract,
    entry_read,
)
from imaging.models import FileProblem, Instance, Upload
from storage.base import ObjectNotFound, StorageUnavailable

logger = logging.getLogger(__name__)

_ZIP_LOCAL_HEADER = struct.Struct("<4s22xHH")  # signature, ..., name length, extra length


def entry_place(archive: Archive, entry: Entry) -> int | None:
    """Where ``entry``'s bytes lie, exactly as they are, in the archive's own: a tar's file (a
    batch of a folder drop), or a zip's entry stored without compression or encryption. None
    for anything else (a deflated entry exists only once unpacked)."""
    if isinstance(entry.info, TarMember):
        return entry.info.offset
    if not isinstance(archive, zipfile.ZipFile) or not isinstance(entry.info, zipfile.ZipInfo):
        return None
    info = entry.info
    if (
        info.compress_type != zipfile.ZIP_STORED
        or info.flag_bits & 0x1
        or info.compress_size != info.file_size
    ):
        return None
    if archive.fp is None:
        return None
    # The entry's data follows its local header, whose name and extra field may differ in
    # length from the central directory's copy: read there, not computed from the listing.
    archive.fp.seek(info.header_offset)
    local = archive.fp.read(_ZIP_LOCAL_HEADER.size)
    if len(local) < _ZIP_LOCAL_HEADER.size:
        return None
    signature, name_length, extra_length = _ZIP_LOCAL_HEADER.unpack(local)
    if signature != b"PK\x03\x04":
        return None
    return int(info.header_offset) + _ZIP_LOCAL_HEADER.size + int(name_length) + int(extra_length)


class ImagingRun(IndexSteps):
    """Ingests a batch of imaging uploads: reads each upload (a file, or a zip of a CD), parses
    its DICOM files, and hands their instances to the index step."""

    def upload_ingest(self, upload: Upload, *, retried: bool = False) -> None:
        """Read every file of ``upload``; its instances join the batch (flushed when full).

        Whatever goes wrong with the upload's bytes is a problem of this upload; only
        :class:`BatchLost` (the database failed us) and :class:`StorageUnavailable` (storage
        did) propagate.
        """
        self.upload = upload
        self.tally(upload)
        try:
            self._upload_read(upload)
        except (BatchLost, StorageUnavailable):
            raise
        except Exception as exc:
            if not (retried and self._already_stored(upload)):
                failure_log(exc, [upload.pk])
                self.problem(
                    upload.relative_path, FileProblem.Code.UNREADABLE, messages.UPLOAD_FAILED, upload=upload
                )
        self.read.append(upload.pk)
        if self.batch_full():
            self.flush()

    def _already_stored(self, upload: Upload) -> bool:
        """Whether a retried ``upload`` lost its raw bytes because its earlier run stored every
        file (the crash came between deleting them and recording DONE); if so, count them."""
        if self.storage.exists(upload.storage_key):
            return False
        kept = Instance.objects.filter(upload=upload).count()
        self.tally(upload).accepted += kept
        self.outcome.accepted += kept
        return kept > 0

    def _upload_read(self, upload: Upload) -> None:
        path = str(upload.relative_path or upload.metadata.get("filename") or "")
        size = upload.length
        if size is None:
            size = self.storage.size(upload.storage_key)
        if size <= IN_MEMORY_ENTRY_BYTES:
            # One read, then parsed and stored from memory (by a background thread, or by a
            # move of the upload's bytes when they need no change): a folder drop is thousands.
            source = upload.storage_key
            try:
                reader = self.storage.open(source)
            except ObjectNotFound:
                if Instance.objects.filter(upload=upload).exists():
                    raise  # stored by an earlier run, which died before recording it: counted
                # An earlier run moved the bytes to their instance key and died before writing
                # the instance: they are taken from there (and put back if this run fails too).
                source = moved_key(self.case, upload)
                reader = self.storage.open(source)
            with reader:
                data = reader.read()
            self.upload_bytes_key = source
            try:
                self.file_ingest(io.BytesIO(data), len(data), path, in_archive=False)
            finally:
                self.upload_bytes_key = None
        else:
            with seekable_upload(upload) as (fp, actual_size):
                self.upload_bytes_key = upload.storage_key
                try:
                    self.file_ingest(fp, actual_size, path, in_archive=False)
                finally:
                    self.upload_bytes_key = None

    # -- one file --------------------------------------------------------------------------------

    def file_ingest(
        self, fp: BinaryIO, size: int, path: str, *, in_archive: bool, place: int | None = None
    ) -> None:
        """Ingest one file; a bad file becomes a FileProblem, never an exception.

        ``place``: where the file's bytes lie, as they are, in the upload's (an entry of its
        archive, stored uncompressed); an image needing no change is then kept there.
        """
        try:
            self._file_ingest(fp, size, path, in_archive=in_archive, place=place)
        except FileRejected as rejected:
            self.problem(path, rejected.code, rejected.message)
        except (BatchLost, StorageUnavailable):
            raise
        except Exception as exc:
            upload_id = self.upload.pk if self.upload else None
            logger.warning("file of upload %s could not be ingested: %s", upload_id, type(exc).__name__)
            self.problem(path, FileProblem.Code.UNREADABLE, messages.UNREADABLE)

    def _file_ingest(
        self, fp: BinaryIO, size: int, path: str, *, in_archive: bool, place: int | None
    ) -> None:
        fp.seek(0)
        head = fp.read(SNIFF_BYTES)
        kind = file_sniff(head, path)
        if kind is FileKind.EMPTY:
            self.problem(path, FileProblem.Code.EMPTY, messages.EMPTY_FILE)
        elif kind in (FileKind.ZIP, FileKind.TAR):
            if in_archive:
                self.problem(path, FileProblem.Code.UNSAFE_ARCHIVE, messages.NESTED_ARCHIVE)
            else:
                # Entries are read by seeking to each; a large read buffer would be refilled
                # (and discarded) at each seek, reading the archive several times over.
                raw = getattr(fp, "raw", None)
                source = raw if raw is not None and raw.seekable() else fp
                self.archive_ingest(source, size, tar=kind is FileKind.TAR)
        elif kind is FileKind.PROGRAM:
            viewer = posixpath.splitext(path.lower())[1] in VIEWER_EXTENSIONS
            self.problem(
                path,
                FileProblem.Code.SKIPPED_PROGRAM,
                messages.PROGRAM_SKIPPED if viewer else messages.PROGRAM_NOT_IMAGE,
            )
            if not viewer and self.upload is not None:
                self.tally(self.upload).serious_problems += 1
        elif kind is FileKind.VIEWER_FILE:
            self.problem(path, FileProblem.Code.SKIPPED_PROGRAM, messages.PROGRAM_SKIPPED)
        elif kind is FileKind.OTHER:
            self.problem(path, FileProblem.Code.NOT_DICOM, messages.NOT_DICOM)
        elif kind is FileKind.PDF:
            # A report on the disc: kept as a report of the case (its problems recorded there).
            assert self.upload is not None
            disc_report_ingest(case=self.case, upload=self.upload, fp=fp, size=size, path=path)
        else:
            self.dicom_ingest(
                fp,
                size,
                path,
                move_from=None if in_archive else self.upload_bytes_key,
                in_archive=in_archive,
                place=place,
            )

    def dicom_ingest(
        self,
        fp: BinaryIO,
        size: int,
        path: str,
        *,
        move_from: str | None = None,
        in_archive: bool = True,
        place: int | None = None,
    ) -> None:
        """Parse one DICOM file and queue its instance; its bytes are stored under a new key.

        ``move_from`` is the key of the upload that is this very file: if the bytes need no
        change they are moved from there, not copied (the upload then has no raw bytes left).
        ``place`` is where the file lies, as it is, in the upload's bytes: if they need no
        change the instance points there and nothing is written (imaging.instance_files).
        """
        assert self.upload is not None
        header = header_read(fp, size)
        if header.is_dicomdir:
            # The disc's index: not an image. Inside a zip it orders the walk (archive_ingest).
            folder = posixpath.dirname(path)
            self.referenced.extend(posixpath.join(folder, ref) for ref in header.referenced_files)
            if not in_archive and header.listed_images is not None:
                # A file of a folder drop: its listing tells which images did not arrive.
                disc_index_keep(upload=self.upload, listed=header.listed_images, path=path)
            return
        if header.sop_instance_uid in self.seen:
            self.problem(path, FileProblem.Code.DUPLICATE, messages.DUPLICATE)
            return
        self.seen.add(header.sop_instance_uid)
        key = f"dicom/{self.case.public_id}/{uuid.uuid4().hex}"
        pending = PendingFile(header=header, storage_key=key, size=size, path=path, upload=self.upload)
        if place is not None and self.upload_bytes_key is not None and not header.preamble_suspicious:
            pending.storage_key = self.upload_bytes_key
            pending.storage_offset = place
        elif move_from is not None and isinstance(fp, io.BytesIO) and not header.preamble_suspicious:
            pending.storage_key = moved_key(self.case, self.upload)
            pending.moved_from = self.upload.storage_key
            if move_from != pending.storage_key:  # else: moved by a run that died since
                pending.saved = self.saver.submit_move(move_from, pending.storage_key)
            self.tally(self.upload).moved = True
        elif isinstance(fp, io.BytesIO):
            # Already in memory: stored by a background thread while we parse the next file.
            # getvalue() hands back the bytes the BytesIO was made from, without a copy.
            data = fp.getvalue()
            if header.preamble_suspicious:
                data = PREAMBLE_ZEROS + data[len(PREAMBLE_ZEROS) :]
            pending.saved = self.saver.submit(key, data)
        else:
            fp.seek(0)
            source: BinaryIO = fp
            if header.preamble_suspicious:
                source = io.BufferedReader(PreambleZeroingReader(fp), buffer_size=1024 * 1024)
            self.storage.save(key, source, size)
        if header.preamble_suspicious:
            self.problem(path, FileProblem.Code.PREAMBLE_CLEARED, messages.PREAMBLE_CLEARED)
        self.batch.append(pending)

    # -- an archive: a zip, or a tar (a batch of a folder drop) ---------------------------------

    def archive_ingest(self, fp: BinaryIO, size: int, *, tar: bool = False) -> None:
        try:
            listing = tar_open(fp, size, self.limits) if tar else archive_open(fp, size, self.limits)
        except ArchiveRefused as refused:
            self.problem("", refused.code, refused.message)
            return
        for entry_problem in listing.problems:
            self.problem(entry_problem.path, entry_problem.code, entry_problem.message)
        indexes = [e for e in listing.entries if posixpath.basename(e.path).upper() == "DICOMDIR"]
        others = [e for e in listing.entries if posixpath.basename(e.path).upper() != "DICOMDIR"]
        # This archive's own index only (a batch may hold other uploads with indexes of their own).
        outer_referenced, self.referenced = self.referenced, []
        with tempfile.TemporaryFile() as scratch:
            # The disc's index first: the images are then read in the order it lists them.
            for entry in indexes:
                self.entry_ingest(listing.archive, entry, scratch)
            for entry in entries_in_order(others, self.referenced):
                self.entry_ingest(listing.archive, entry, scratch)
                if self.batch_full():
                    self.flush()
            # A large entry is read from the scratch file, which is gone once we leave.
            self.flush()
        referenced, self.referenced = self.referenced, outer_referenced
        if referenced:
            present = {entry.path.upper() for entry in others}
            if any(path.upper() not in present for path in referenced):
                self.problem("DICOMDIR", FileProblem.Code.MISSING_FILES, messages.MISSING_FILES)

    def entry_ingest(self, archive: Archive, entry: Entry, scratch: BinaryIO) -> None:
        """Unpack one entry (in memory if small, else to the scratch file) and ingest it."""
        try:
            if entry.size <= IN_MEMORY_ENTRY_BYTES:
                source: BinaryIO = io.BytesIO(entry_read(archive, entry))
                written = entry.size
            else:
                written = entry_extract(archive, entry, scratch)
                source = scratch
        except EntryRefused as refused:
            self.problem(entry.path, refused.code, refused.message)
            return
        except Exception:  # damaged, encrypted, or an unknown compression method
            self.problem(entry.path, FileProblem.Code.UNREADABLE, messages.UNREADABLE)
            return
        self.file_ingest(source, written, entry.path, in_archive=True, place=entry_place(archive, entry))

    # -- the database ---------------------------------------------------------------------------
