"""Reads behind the DICOMweb answers: search results from rows, metadata from the files."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from django.core.cache import cache
from django.db.models import Count, QuerySet

from imaging.dicomweb.access import Scope, studies_in_scope
from imaging.dicomweb.frames import open_instance, read_header
from imaging.dicomweb.qido import Query, dicom_date, element
from imaging.models import Instance, Series, Study

DicomJson = dict[str, Any]


def _study_json(study: Study, base_url: str) -> DicomJson:
    modalities = [m for m in study.modalities.split(",") if m]
    return {
        "00080020": element("DA", dicom_date(study.study_date)),
        "00080030": element("TM", study.study_time),
        "00080050": element("SH", study.accession_number),
        "00080061": element("CS", *modalities),
        "00080090": element("PN", study.referring_physician),
        "00081030": element("LO", study.description),
        "00081190": element("UR", f"{base_url}/studies/{study.study_instance_uid}"),
        "00100010": element("PN", study.patient_name_in_files),
        "00100020": element("LO", study.patient_id_in_files),
        "00100030": element("DA", study.patient_birth_date_in_files),
        "00100040": element("CS", study.patient_sex_in_files),
        "0020000D": element("UI", study.study_instance_uid),
        "00201206": element("IS", getattr(study, "n_series", study.series_count)),
        "00201208": element("IS", getattr(study, "n_instances", study.instance_count)),
    }


def _series_json(series: Series, base_url: str, study_uid: str) -> DicomJson:
    return {
        "00080060": element("CS", series.modality),
        "0008103E": element("LO", series.description),
        "00081190": element("UR", f"{base_url}/studies/{study_uid}/series/{series.series_instance_uid}"),
        "00180015": element("CS", series.body_part),
        "0020000D": element("UI", study_uid),
        "0020000E": element("UI", series.series_instance_uid),
        "00200011": element("IS", series.series_number),
        "00201209": element("IS", getattr(series, "n_instances", series.instance_count)),
    }


def _instance_json(instance: Instance, base_url: str, study_uid: str, series_uid: str) -> DicomJson:
    url = f"{base_url}/studies/{study_uid}/series/{series_uid}/instances/{instance.sop_instance_uid}"
    return {
        "00080016": element("UI", instance.sop_class_uid),
        "00080018": element("UI", instance.sop_instance_uid),
        "00081190": element("UR", url),
        "00083002": element("UI", instance.transfer_syntax_uid),
        "0020000D": element("UI", study_uid),
        "0020000E": element("UI", series_uid),
        "00200013": element("IS", instance.instance_number),
        "00280008": element("IS", instance.number_of_frames),
        "00280010": element("US", instance.rows),
        "00280011": element("US", instance.columns),
    }


def study_search(*, scope: Scope, query: Query, base_url: str) -> list[Study]:
    return list(
        studies_in_scope(scope)
        .filter(query.filter)
        .select_related("case")
        .annotate(
            n_series=Count("series", distinct=True),
            n_instances=Count("series__instances", distinct=True),
        )
        .order_by("study_date", "id")[query.offset : query.offset + query.limit]
    )


def study_search_json(*, studies: list[Study], base_url: str) -> list[DicomJson]:
    return [_study_json(study, base_url) for study in studies]


def series_search(*, scope: Scope, study: Study | None, query: Query, base_url: str) -> list[DicomJson]:
    """Series of ``study``, or of every study in scope when ``study`` is None."""
    rows: QuerySet[Series] = (
        Series.objects.filter(study=study)
        if study
        else Series.objects.filter(study__in=studies_in_scope(scope))
    )
    rows = (
        rows.filter(query.filter)
        .select_related("study")
        .annotate(n_instances=Count("instances"))
        .order_by("study_id", "series_number", "id")[query.offset : query.offset + query.limit]
    )
    return [_series_json(series, base_url, series.study.study_instance_uid) for series in rows]


def instance_search(
    *, scope: Scope, study: Study | None, series: Series | None, query: Query, base_url: str
) -> list[DicomJson]:
    if series is not None:
        rows = Instance.objects.filter(series=series)
    elif study is not None:
        rows = Instance.objects.filter(series__study=study)
    else:
        rows = Instance.objects.filter(series__study__in=studies_in_scope(scope))
    rows = (
        rows.filter(query.filter)
        .select_related("series__study")
        .order_by("series_id", "instance_number", "id")[query.offset : query.offset + query.limit]
    )
    return [
        _instance_json(
            instance, base_url, instance.series.study.study_instance_uid, instance.series.series_instance_uid
        )
        for instance in rows
    ]


def instances_of(*, study: Study, series: Series | None = None) -> list[Instance]:
    """Instances in display order (series, then instance number), for retrieval."""
    rows = Instance.objects.filter(series=series) if series else Instance.objects.filter(series__study=study)
    return list(
        rows.select_related("series").order_by("series__series_number", "series_id", "instance_number", "id")
    )


# Metadata JSON of an instance never changes (its file is never rewritten), and converting a
# header to DICOM JSON costs several milliseconds, so a 300-image series would take seconds to
# describe on every open. The cache key names the stored file; django-tenants prefixes the schema.
METADATA_CACHE_SECONDS = 7 * 24 * 3600


def instance_metadata(instance: Instance) -> DicomJson:
    """The instance's attributes as DICOM JSON, read from the stored file (without pixel data).

    The file's Transfer Syntax UID (0002,0010) is added: viewers need it to know whether they
    can decode the frames before asking for them.

    Photometric Interpretation stays as stored (e.g. YBR_FULL_422 for a colour JPEG) even though
    frames decoded here come back as RGB: one metadata answer serves both kinds of frame
    requests, and a client that decodes stored frames itself (Cornerstone, asking
    ``transfer-syntax=*``) needs the stored value to convert YBR (RLE, uncompressed YBR) to RGB.
    Whole instances sent decompressed do say RGB (pydicom's ``decompress`` rewrites the Image
    Pixel module); a client asking for decoded frames must read colour frames as RGB.
    """
    with open_instance(instance) as stream:
        header = read_header(stream)
    meta = header.to_json_dict(bulk_data_threshold=64 * 1024)
    transfer_syntax = header.file_meta.get("TransferSyntaxUID") or instance.transfer_syntax_uid
    meta["00020010"] = element("UI", str(transfer_syntax))
    return meta


def instance_metadata_bytes(instance: Instance) -> bytes:
    key = f"dicomweb:metadata:{instance.storage_key}"
    cached = cache.get(key)
    if cached is None:
        cached = json.dumps(instance_metadata(instance), separators=(",", ":")).encode()
        cache.set(key, cached, METADATA_CACHE_SECONDS)
    return bytes(cached)


def metadata_stream(instances: list[Instance]) -> Iterator[bytes]:
    """A JSON array of the instances' metadata, produced one instance at a time."""
    yield b"["
    for position, instance in enumerate(instances):
        if position:
            yield b","
        yield instance_metadata_bytes(instance)
    yield b"]"
