"""Reads behind the DICOMweb answers: search results from rows, metadata from the files."""

from __future__ import annotations

import json
import zlib
from collections.abc import Iterator
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db.models import Count, QuerySet

from imaging.dicomweb.access import Scope, studies_in_scope
from imaging.dicomweb.attributes import Selection, element, header_values, row_json, selection_for
from imaging.dicomweb.frames import StoredFile
from imaging.dicomweb.qido import Query
from imaging.instance_files import instance_file_identity
from imaging.models import Instance, Series, Study

DicomJson = dict[str, Any]


def _header_extras(instance: Instance | None, selection: Selection) -> DicomJson:
    """Attributes asked for by ``includefield`` that no row keeps, from one instance's header."""
    if not selection.from_header or instance is None:
        return {}
    return header_values(json.loads(instance_metadata_bytes(instance)), selection.from_header)


def _answer(
    level: str, rows: list[Any], selection: Selection, urls: list[str], firsts: list[Any]
) -> list[DicomJson]:
    out = []
    for row, url, first in zip(rows, urls, firsts, strict=True):
        result = row_json(level, row, selection, url)
        result.update(_header_extras(first, selection))
        out.append(dict(sorted(result.items())))
    return out


def _first_instances(rows: list[Any], level: str, selection: Selection) -> list[Instance | None]:
    """An instance of each result, only when header attributes were asked for."""
    if not selection.from_header:
        return [None] * len(rows)
    if level == "instance":
        return list(rows)
    field = "series__study" if level == "study" else "series"
    firsts: dict[int, Instance] = {}
    for instance in Instance.objects.filter(**{f"{field}__in": rows}).order_by(
        f"{field}_id" if level == "series" else "series__study_id", "instance_number", "id"
    ):
        key = instance.series_id if level == "series" else instance.series.study_id
        firsts.setdefault(key, instance)
    return [firsts.get(row.pk) for row in rows]


def study_search(*, scope: Scope, query: Query) -> list[Study]:
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


def study_search_json(*, studies: list[Study], query: Query, base_url: str) -> list[DicomJson]:
    selection = selection_for("study", include=query.include, include_all=query.include_all)
    urls = [f"{base_url}/studies/{study.study_instance_uid}" for study in studies]
    return _answer("study", studies, selection, urls, _first_instances(studies, "study", selection))


def series_search(*, scope: Scope, study: Study | None, query: Query, base_url: str) -> list[DicomJson]:
    """Series of ``study``, or of every study in scope when ``study`` is None."""
    rows: QuerySet[Series] = (
        Series.objects.filter(study=study)
        if study
        else Series.objects.filter(study__in=studies_in_scope(scope))
    )
    found = list(
        rows.filter(query.filter)
        .select_related("study")
        .annotate(n_instances=Count("instances"))
        .order_by("study_id", "series_number", "id")[query.offset : query.offset + query.limit]
    )
    selection = selection_for("series", include=query.include, include_all=query.include_all)
    urls = [
        f"{base_url}/studies/{series.study.study_instance_uid}/series/{series.series_instance_uid}"
        for series in found
    ]
    return _answer("series", found, selection, urls, _first_instances(found, "series", selection))


def instance_search(
    *, scope: Scope, study: Study | None, series: Series | None, query: Query, base_url: str
) -> list[DicomJson]:
    if series is not None:
        rows = Instance.objects.filter(series=series)
    elif study is not None:
        rows = Instance.objects.filter(series__study=study)
    else:
        rows = Instance.objects.filter(series__study__in=studies_in_scope(scope))
    found = list(
        rows.filter(query.filter)
        .select_related("series__study")
        .order_by("series_id", "instance_number", "id")[query.offset : query.offset + query.limit]
    )
    selection = selection_for("instance", include=query.include, include_all=query.include_all)
    urls = [
        f"{base_url}/studies/{i.series.study.study_instance_uid}/series/{i.series.series_instance_uid}"
        f"/instances/{i.sop_instance_uid}"
        for i in found
    ]
    return _answer("instance", found, selection, urls, _first_instances(found, "instance", selection))


def instances_of(*, study: Study, series: Series | None = None) -> list[Instance]:
    """Instances in display order (series, then instance number), for retrieval."""
    rows = Instance.objects.filter(series=series) if series else Instance.objects.filter(series__study=study)
    return list(
        rows.select_related("series").order_by("series__series_number", "series_id", "instance_number", "id")
    )


# Metadata JSON of an instance never changes (its file is never rewritten), and converting a
# header to DICOM JSON costs several milliseconds, so a 300-image series would take seconds to
# describe on every open. The cache key names the stored file; django-tenants prefixes the schema.
# Bounded: entries are zlib-compressed (about a fifth of the 14.5 KB JSON of a typical CT
# instance) and live DICOM_METADATA_CACHE_SECONDS (a day by default: a study is read in the days
# after its upload, rarely later); the cache Redis evicts least-recently-used keys when full
# (maxmemory-policy allkeys-lru, docs/scaling.md), which only costs a re-read of the header.


def instance_metadata(instance: Instance) -> DicomJson:
    """The instance's attributes as DICOM JSON, read from the stored file's header (a ranged
    read of the bytes before its pixel data).

    The file's Transfer Syntax UID (0002,0010) is added: viewers need it to know whether they
    can decode the frames before asking for them.

    Photometric Interpretation stays as stored (e.g. YBR_FULL_422 for a colour JPEG) even though
    frames decoded here come back as RGB: one metadata answer serves both kinds of frame
    requests, and a client that decodes stored frames itself (Cornerstone, asking
    ``transfer-syntax=*``) needs the stored value to convert YBR (RLE, uncompressed YBR) to RGB.
    Whole instances sent decompressed do say RGB (pydicom's ``decompress`` rewrites the Image
    Pixel module); a client asking for decoded frames must read colour frames as RGB.
    """
    header = StoredFile(instance).header()
    meta = header.to_json_dict(bulk_data_threshold=64 * 1024)
    transfer_syntax = header.file_meta.get("TransferSyntaxUID") or instance.transfer_syntax_uid
    meta["00020010"] = element("UI", str(transfer_syntax))
    return meta


def instance_metadata_bytes(instance: Instance) -> bytes:
    key = f"dicomweb:metadata:{instance_file_identity(instance)}"
    cached = cache.get(key)
    if cached is not None:
        try:
            return zlib.decompress(cached)
        except (zlib.error, TypeError):
            pass  # written by an older release (uncompressed): made again below
    made = json.dumps(instance_metadata(instance), separators=(",", ":")).encode()
    cache.set(key, zlib.compress(made, 6), settings.DICOM_METADATA_CACHE_SECONDS)
    return made


def metadata_stream(instances: list[Instance]) -> Iterator[bytes]:
    """A JSON array of the instances' metadata, produced one instance at a time."""
    yield b"["
    for position, instance in enumerate(instances):
        if position:
            yield b","
        yield instance_metadata_bytes(instance)
    yield b"]"
