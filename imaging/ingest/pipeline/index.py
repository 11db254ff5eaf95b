"""The index step: the batch's instances written to the database (studies and series found or
created, instances inserted and checked, counts recomputed), one transaction per batch."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable, Iterator

from django.db import connection, transaction

from imaging.ingest import messages
from imaging.ingest.consistency import patient_names_differ
from imaging.ingest.dicom import DicomHeader
from imaging.ingest.pipeline.batch import BatchLost, RunState
from imaging.ingest.pipeline.store import PendingFile
from imaging.instance_files import instance_in_batch
from imaging.models import FileProblem, Instance, Series, Study
from storage.base import StorageUnavailable

logger = logging.getLogger(__name__)


@contextlib.contextmanager
def ingest_transaction() -> Iterator[None]:
    """A transaction whose commit does not wait for the database's disk flush.

    A commit waits ~5 ms for the WAL fsync on ordinary disks. If the database crashes, the last
    moments of ingest may be lost (never half-written: WAL order is kept); the uploads then stay
    INGESTING and are claimed again after INGEST_STALE_AFTER, which re-ingests them harmlessly.
    The commit that ends an upload DONE is an ordinary (durable) one, which flushes the WAL of
    every earlier commit with it: once an upload is DONE (and its raw bytes deleted), its
    instances are on disk. Only this transaction is affected (SET LOCAL).
    """
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL synchronous_commit TO OFF")
        yield


def counts_recompute(*, series_ids: Iterable[int], study_ids: Iterable[int]) -> None:
    """Set instance/series counts and modalities from the rows themselves (one UPDATE each).

    Plain SQL, the same two statements every time: the ORM compiled its subqueries anew for
    every batch, which cost more than running them.
    """
    quote = connection.ops.quote_name
    instances, series, studies = (quote(model._meta.db_table) for model in (Instance, Series, Study))
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {series} s SET instance_count = "  # noqa: S608 - table names are ours
            f"(SELECT count(*) FROM {instances} i WHERE i.series_id = s.id) WHERE s.id = ANY(%s)",
            [sorted(series_ids)],
        )
        cursor.execute(
            f"""UPDATE {studies} st SET
                series_count = (SELECT count(*) FROM {series} s WHERE s.study_id = st.id),
                instance_count = (
                    SELECT COALESCE(sum(s.instance_count), 0) FROM {series} s WHERE s.study_id = st.id
                ),
                modalities = COALESCE((
                    SELECT string_agg(DISTINCT s.modality, ',' ORDER BY s.modality)
                    FROM {series} s WHERE s.study_id = st.id AND s.modality <> ''
                ), '')
            WHERE st.id = ANY(%s)""",  # noqa: S608 - table names are ours
            [sorted(study_ids)],
        )


# An Instance row as the ingest writes it: each column with its SQL type, for unnest.
INSTANCE_COLUMNS = (
    ("series_id", "bigint"),
    ("sop_instance_uid", "varchar"),
    ("sop_class_uid", "varchar"),
    ("instance_number", "integer"),
    ("transfer_syntax_uid", "varchar"),
    ("rows", "integer"),
    ("columns", "integer"),
    ("number_of_frames", "integer"),
    ("bits_allocated", "smallint"),
    ("slice_location", "double precision"),
    ("storage_key", "varchar"),
    ("storage_offset", "bigint"),
    ("size", "bigint"),
    ("preamble_cleared", "boolean"),
    ("header_length", "bigint"),
    ("pixel_data_offset", "bigint"),
    ("frames_encapsulated", "boolean"),
    ("frame_spans", "bytea"),
    ("upload_id", "bigint"),
)


def instances_insert(placed: list[tuple[PendingFile, int]]) -> None:
    """Insert an instance row per (file, series id), skipping those whose (series, UID) exists.

    One INSERT from one array per column (unnest): the statement is the same whatever the
    batch's size, and no model object is made per row. The ORM's bulk_create built the
    statement value by value, a fifth of the worker's CPU in a folder drop.
    """
    rows = []
    for pending, series_id in placed:
        header = pending.header
        index = header.pixel_index
        rows.append(
            (
                series_id,
                header.sop_instance_uid,
                header.sop_class_uid[:64],
                header.instance_number,
                header.transfer_syntax_uid[:64],
                header.rows,
                header.columns,
                header.number_of_frames,
                header.bits_allocated,
                header.slice_location,
                pending.storage_key,
                pending.storage_offset,
                pending.size,
                header.preamble_suspicious,
                index.header_length if index else None,
                index.pixel_data_offset if index else None,
                index.frames_encapsulated if index else False,
                index.frame_spans if index else None,
                pending.upload.pk,
            )
        )
    quote = connection.ops.quote_name
    columns = ", ".join(quote(name) for name, _ in INSTANCE_COLUMNS)
    arrays = ", ".join(f"%s::{kind}[]" for _, kind in INSTANCE_COLUMNS)
    sql = (
        f"INSERT INTO {quote(Instance._meta.db_table)} ({columns}, {quote('created')}) "  # noqa: S608 - ours
        f"SELECT row.*, now() FROM unnest({arrays}) AS row ON CONFLICT DO NOTHING"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [list(column) for column in zip(*rows, strict=True)])


class IndexSteps(RunState):
    """The index step: studies, series and instances written to the database, in batches."""

    def _study(self, header: DicomHeader) -> Study:
        study = self.studies.get(header.study_instance_uid)
        if study is None:
            values = {
                "study_date": header.study_date,
                "study_time": header.study_time,
                "description": header.study_description,
                "accession_number": header.accession_number,
                "study_id": header.study_id,
                "body_part": header.body_part,
                "referring_physician": header.referring_physician,
                "patient_name_in_files": header.patient_name,
                "patient_id_in_files": header.patient_id,
                "patient_birth_date_in_files": header.patient_birth_date,
                "patient_sex_in_files": header.patient_sex,
            }
            study, created = Study.objects.get_or_create(
                case=self.case, study_instance_uid=header.study_instance_uid, defaults=values
            )
            if created:
                self.outcome.new_studies += 1
            else:
                # Fill what earlier files of the study left blank; never overwrite.
                blanks = {name: value for name, value in values.items() if value and not getattr(study, name)}
                if blanks:
                    Study.objects.filter(pk=study.pk).update(**blanks)
                    for name, value in blanks.items():
                        setattr(study, name, value)
                    self.patient_filled |= bool(
                        {"patient_name_in_files", "patient_birth_date_in_files"} & set(blanks)
                    )
            self.studies[header.study_instance_uid] = study
        if patient_names_differ(study.patient_name_in_files, header.patient_name) or (
            study.patient_birth_date_in_files
            and header.patient_birth_date
            and study.patient_birth_date_in_files.strip() != header.patient_birth_date.strip()
        ):
            self.mismatch_seen = True
        return study

    def _series(self, study: Study, header: DicomHeader) -> Series:
        cache_key = (header.study_instance_uid, header.series_instance_uid)
        series = self.series.get(cache_key)
        if series is None:
            values = {
                "series_number": header.series_number,
                "modality": header.modality,
                "description": header.series_description,
                "body_part": header.body_part,
            }
            series, created = Series.objects.get_or_create(
                study=study, series_instance_uid=header.series_instance_uid, defaults=values
            )
            if not created:
                blanks = {
                    name: value
                    for name, value in values.items()
                    if value not in (None, "") and getattr(series, name) in (None, "")
                }
                if blanks:
                    Series.objects.filter(pk=series.pk).update(**blanks)
            self.series[cache_key] = series
        return series

    def flush(self) -> None:
        """Write the pending instances and problems in one transaction; files that turn out to
        be duplicates are deleted. Uploads read in full before this call are then settled."""
        settling, self.read = self.read, []
        batch, self.batch = self.batch, []
        stored = []
        unavailable: StorageUnavailable | None = None
        for pending in batch:
            if pending.saved is not None:
                try:
                    pending.saved.result()
                except StorageUnavailable as exc:
                    unavailable = exc  # storage failed us, not the file: the run stops below
                    continue
                except Exception as exc:
                    logger.warning(
                        "storing a file of upload %s failed: %s", pending.upload.pk, type(exc).__name__
                    )
                    self.discard(pending)
                    self.problem(
                        pending.path, FileProblem.Code.UNREADABLE, messages.UNREADABLE, upload=pending.upload
                    )
                    continue
            stored.append(pending)
        if unavailable is not None:
            # Nothing half-written: the files of this batch that did get stored go again (the
            # retried run stores them anew), and no instance of the batch is written.
            for pending in stored:
                with contextlib.suppress(Exception):
                    self.discard(pending)
            self.read = settling
            raise unavailable
        landed: dict[int, int] = {}
        try:
            with ingest_transaction():
                if stored:
                    landed, series_ids, study_ids = self._instances_insert(stored)
                    counts_recompute(series_ids=series_ids, study_ids=study_ids)
                    self.outcome.series_ids |= series_ids
                self.problems_save()
        except Exception as exc:
            for pending in stored:
                self.discard(pending)
            raise BatchLost from exc
        for upload_id, count in landed.items():
            self.outcome.uploads[upload_id].accepted += count
            self.outcome.accepted += count
        for upload_id in settling:
            self.outcome.uploads[upload_id].settled = True

    def _instances_insert(self, batch: list[PendingFile]) -> tuple[dict[int, int], set[int], set[int]]:
        """Insert the batch's instances; return how many landed per upload, and the series and
        studies they went to."""
        placed: list[tuple[PendingFile, Series]] = []
        for pending in batch:
            study = self._study(pending.header)
            placed.append((pending, self._series(study, pending.header)))
        # Two workers adding to one study take turns from here to the commit: each one's counts
        # are then computed after the other's rows are committed, so none is lost (a count
        # computed by an UPDATE that merely waited on a row lock could miss them).
        list(
            Study.objects.select_for_update()
            .filter(pk__in={series.study_id for _, series in placed})
            .order_by("pk")
            .values_list("pk", flat=True)
        )
        # Insert first, then read back every row of these UIDs in the case: one query tells
        # which of ours landed, which were there before (a duplicate, or our own from a retried
        # run), and which lost a race with another worker on the unique constraint.
        instances_insert([(pending, series.pk) for pending, series in placed])
        # A row is ours if it names our bytes: the key, and the place in it (images kept in
        # their batch share the batch's key).
        rows: dict[str, list[tuple[int, tuple[str, int], int | None]]] = {}
        for uid, pk, key, offset, upload_id in Instance.objects.filter(
            series__study__case=self.case, sop_instance_uid__in=[p.header.sop_instance_uid for p, _ in placed]
        ).values_list("sop_instance_uid", "pk", "storage_key", "storage_offset", "upload_id"):
            rows.setdefault(uid, []).append((pk, (key, offset), upload_id))
        landed: dict[int, int] = {}
        extra: list[int] = []
        for pending, _ in placed:
            found = rows.get(pending.header.sop_instance_uid, [])
            place = (pending.storage_key, pending.storage_offset)
            ours = [pk for pk, where, _ in found if where == place]
            others = [(pk, upload_id) for pk, where, upload_id in found if where != place]
            upload_id = pending.upload.pk
            if ours and not others:
                landed[upload_id] = landed.get(upload_id, 0) + 1
                if instance_in_batch(pending):
                    self.tally(pending.upload).kept_in_batch = True
                continue
            # Stored once: the image that was there first stays; our copy goes.
            extra.extend(ours)
            if not instance_in_batch(pending):  # an image kept in its batch has no copy to delete
                self.storage.delete(pending.storage_key)
            if any(other_upload == upload_id for _, other_upload in others):
                landed[upload_id] = landed.get(upload_id, 0) + 1  # a retried ingest: not a duplicate
            else:
                self.problem(
                    pending.path, FileProblem.Code.DUPLICATE, messages.DUPLICATE, upload=pending.upload
                )
        if extra:  # the same image in another series of the case (the constraint is per series)
            Instance.objects.filter(pk__in=extra).delete()
        series_ids = {series.pk for _, series in placed}
        study_ids = {series.study_id for _, series in placed}
        return landed, series_ids, study_ids
