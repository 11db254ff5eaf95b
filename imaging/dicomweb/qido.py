"""QIDO-RS query parameters and DICOM JSON answers (PS3.18 §10.6, PS3.18 Annex F).

Searches answer from the database rows the ingest wrote (Study / Series / Instance), never by
opening files, so a search over thousands of instances costs a few queries.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from typing import Any

from django.db.models import Q
from django.http import QueryDict

# Keyword of each attribute a client may match on, by keyword or by tag (both are allowed).
MATCHABLE: dict[str, str] = {
    "StudyInstanceUID": "0020000D",
    "StudyDate": "00080020",
    "AccessionNumber": "00080050",
    "ModalitiesInStudy": "00080061",
    "SeriesInstanceUID": "0020000E",
    "Modality": "00080060",
    "SeriesNumber": "00200011",
    "SOPInstanceUID": "00080018",
    "SOPClassUID": "00080016",
    "InstanceNumber": "00200013",
}
_BY_TAG = {tag: keyword for keyword, tag in MATCHABLE.items()}

# Which model field each key matches, per level of the search (a series search at the root can
# match study attributes too, through the relation).
_FIELDS: dict[str, dict[str, str]] = {
    "study": {
        "StudyInstanceUID": "study_instance_uid",
        "StudyDate": "study_date",
        "AccessionNumber": "accession_number",
        "ModalitiesInStudy": "modalities",
    },
    "series": {
        "SeriesInstanceUID": "series_instance_uid",
        "Modality": "modality",
        "SeriesNumber": "series_number",
    },
    "instance": {
        "SOPInstanceUID": "sop_instance_uid",
        "SOPClassUID": "sop_class_uid",
        "InstanceNumber": "instance_number",
    },
}
_PATH_TO = {
    ("series", "study"): "study__",
    ("instance", "series"): "series__",
    ("instance", "study"): "series__study__",
}
_LEVELS = {"study": ("study",), "series": ("series", "study"), "instance": ("instance", "series", "study")}

BAD_DATE = "StudyDate must be a date (YYYYMMDD) or a range of dates (YYYYMMDD-YYYYMMDD)."
BAD_NUMBER = "{key} must be a whole number."
BAD_LIMIT = "limit and offset must be whole numbers (limit at least 1)."
MAX_LIMIT = 1000


class QueryError(ValueError):
    """A malformed query; the message is safe to show to the client."""


@dataclass
class Query:
    filter: Q
    limit: int
    offset: int
    include_all: bool
    include: set[str]
    ignored: list[str] = field(default_factory=list)


def _date(text: str) -> dt.date:
    try:
        return dt.datetime.strptime(text, "%Y%m%d").date()
    except ValueError:
        raise QueryError(BAD_DATE) from None


def _date_filter(column: str, value: str) -> Q:
    if "-" not in value:
        return Q(**{column: _date(value)})
    start, _, end = value.partition("-")
    if not start and not end:
        raise QueryError(BAD_DATE)
    condition = Q()
    if start:
        condition &= Q(**{f"{column}__gte": _date(start)})
    if end:
        condition &= Q(**{f"{column}__lte": _date(end)})
    return condition


def _wildcard_filter(column: str, value: str) -> Q:
    if "*" not in value and "?" not in value:
        return Q(**{column: value})
    pattern = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in value)
    return Q(**{f"{column}__regex": f"^{pattern}$"})


def _key_filter(keyword: str, column: str, value: str) -> Q:
    if keyword == "StudyDate":
        return _date_filter(column, value)
    if keyword in ("SeriesNumber", "InstanceNumber"):
        try:
            return Q(**{column: int(value)})
        except ValueError:
            raise QueryError(BAD_NUMBER.format(key=keyword)) from None
    if keyword == "ModalitiesInStudy":
        # Stored as "CT,MR"; a study matches if any of its modalities is one of those asked.
        condition = Q()
        for modality in re.split(r"[,\\]", value):
            if modality:
                condition |= Q(**{f"{column}__regex": rf"(^|,){re.escape(modality.upper())}(,|$)"})
        return condition
    if keyword.endswith("UID"):
        return Q(**{f"{column}__in": [uid for uid in re.split(r"[,\\]", value) if uid]})
    return _wildcard_filter(column, value)


def parse_query(params: QueryDict, *, level: str) -> Query:
    """Turn QIDO-RS parameters into a filter on the model of ``level`` ("study", "series",
    "instance"). Keys the server cannot match on are listed in ``ignored`` (answered with a
    Warning header, as PS3.18 §8.3.4 allows) rather than refused."""
    condition = Q()
    ignored: list[str] = []
    include: set[str] = set()
    include_all = False
    try:
        limit = int(params.get("limit", MAX_LIMIT))
        offset = int(params.get("offset", 0))
    except ValueError:
        raise QueryError(BAD_LIMIT) from None
    if limit < 1 or offset < 0:
        raise QueryError(BAD_LIMIT)
    for key, values in params.lists():
        if key in ("limit", "offset", "fuzzymatching"):
            continue
        if key == "includefield":
            for value in values:
                for name in value.split(","):
                    include_all = include_all or name == "all"
                    include.add(_BY_TAG.get(name.upper(), name))
            continue
        keyword = _BY_TAG.get(key.upper(), key)
        owner = next((lvl for lvl in _LEVELS[level] if keyword in _FIELDS[lvl]), None)
        if owner is None:
            ignored.append(key)
            continue
        column = _PATH_TO.get((level, owner), "") + _FIELDS[owner][keyword]
        for value in values:
            if value:
                condition &= _key_filter(keyword, column, value)
    return Query(condition, min(limit, MAX_LIMIT), offset, include_all, include, ignored)


# --- DICOM JSON (PS3.18 Annex F) ------------------------------------------------------------


def element(vr: str, *values: Any) -> dict[str, Any]:
    """A DICOM JSON attribute; empty values give an attribute with no Value, as the model says."""
    kept = [value for value in values if value not in (None, "")]
    if vr == "PN":
        kept = [{"Alphabetic": str(value)} for value in kept]
    return {"vr": vr, "Value": kept} if kept else {"vr": vr}


def dicom_date(value: dt.date | None) -> str | None:
    return value.strftime("%Y%m%d") if value else None
