"""The index step: the batch's instances written to the database (studies and series found or
created, instances inserted and checked, counts recomputed), one transaction per batch."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable, Iterator

from django.contrib.postgres.aggregates import StringAgg
from django.db import connection, transaction
from django.db.models import Count, OuterRef, Subquery, Sum, Value
from django.db.models.functions import Coalesce

from imaging.ingest import messages
from imaging.ingest.consistency import patient_names_differ
from imaging.ingest.dicom import DicomHeader
from imaging.ingest.pipeline.batch import BatchLost, RunState
from imaging.ingest.pipeline.store import PendingFile
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
    """Set instance/series counts and modalities from the rows themselves (one UPDATE each)."""
    instance_counts = (
        Instance.objects.filter(series=OuterRef("pk"))
        .order_by()
        .values("series")
        .annotate(n=Count("pk"))
        .values("n")
    )
    Series.objects.filter(pk__in=list(series_ids)).update(
        instance_count=Coalesce(Subquery(instance_counts), 0)
    )
    per_study = Series.objects.filter(study=OuterRef("pk")).order_by().values("study")
    Study.objects.filter(pk__in=list(study_ids)).update(
        series_count=Coalesce(Subquery(per_study.annotate(n=Count("pk")).values("n")), 0),
        instance_count=Coalesce(Subquery(per_study.annotate(n=Sum("instance_count")).values("n")), 0),
        modalities=Coalesce(
            Subquery(
                per_study.exclude(modality="")
                .annotate(codes=StringAgg("modality", ",", distinct=True, order_by="modality"))
                .values("codes")
            ),
            Value(""),
        ),
    )


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
        Instance.objects.bulk_create(
            [
                Instance(
                    series=series,
                    sop_instance_uid=pending.header.sop_instance_uid,
                    sop_class_uid=pending.header.sop_class_uid[:64],
                    instance_number=pending.header.instance_number,
                    transfer_syntax_uid=pending.header.transfer_syntax_uid[:64],
                    rows=pending.header.rows,
                    columns=pending.header.columns,
                    number_of_frames=pending.header.number_of_frames,
                    bits_allocated=pending.header.bits_allocated,
                    slice_location=pending.header.slice_location,
                    storage_key=pending.storage_key,
                    size=pending.size,
                    preamble_cleared=pending.header.preamble_suspicious,
                    upload=pending.upload,
                    **(pending.header.pixel_index.fields() if pending.header.pixel_index else {}),
                )
                for pending, series in placed
            ],
            ignore_conflicts=True,
        )
        rows: dict[str, list[tuple[int, str, int | None]]] = {}
        for uid, pk, key, upload_id in Instance.objects.filter(
            series__study__case=self.case, sop_instance_uid__in=[p.header.sop_instance_uid for p, _ in placed]
        ).values_list("sop_instance_uid", "pk", "storage_key", "upload_id"):
            rows.setdefault(uid, []).append((pk, key, upload_id))
        landed: dict[int, int] = {}
        extra: list[int] = []
        for pending, _ in placed:
            found = rows.get(pending.header.sop_instance_uid, [])
            ours = [pk for pk, key, _ in found if key == pending.storage_key]
            others = [(pk, upload_id) for pk, key, upload_id in found if key != pending.storage_key]
            upload_id = pending.upload.pk
            if ours and not others:
                landed[upload_id] = landed.get(upload_id, 0) + 1
                continue
            # Stored once: the image that was there first stays; our copy goes.
            extra.extend(ours)
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
