"""QIDO-RS query parameters and DICOM JSON answers (PS3.18 §10.6, PS3.18 Annex F).

Searches answer from the database rows the ingest wrote (Study / Series / Instance), never by
opening files, so a search over thousands of instances costs a few queries.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field

from django.db.models import Q
from django.http import QueryDict

from imaging.dicomweb.attributes import attribute_tag

# Keyword of each attribute a client may match on, by keyword or by tag (both are allowed).
MATCHABLE: dict[str, str] = {
    "StudyInstanceUID": "0020000D",
    "StudyDate": "00080020",
    "AccessionNumber": "00080050",
    "ModalitiesInStudy": "00080061",
    "ReferringPhysicianName": "00080090",
    "StudyDescription": "00081030",
    "PatientName": "00100010",
    "PatientID": "00100020",
    "PatientBirthDate": "00100030",
    "PatientSex": "00100040",
    "StudyID": "00200010",
    "SeriesInstanceUID": "0020000E",
    "Modality": "00080060",
    "SeriesNumber": "00200011",
    "SeriesDescription": "0008103E",
    "SOPInstanceUID": "00080018",
    "SOPClassUID": "00080016",
    "InstanceNumber": "00200013",
}
# Person names match case-insensitively (PS3.4 C.2.2.2.1 leaves case to the implementation;
# patients' CDs spell names in every case).
PERSON_NAMES = {"PatientName", "ReferringPhysicianName"}
_BY_TAG = {tag: keyword for keyword, tag in MATCHABLE.items()}

# Which model field each key matches, per level of the search (a series search at the root can
# match study attributes too, through the relation).
_FIELDS: dict[str, dict[str, str]] = {
    "study": {
        "StudyInstanceUID": "study_instance_uid",
        "StudyDate": "study_date",
        "AccessionNumber": "accession_number",
        "ModalitiesInStudy": "modalities",
        "ReferringPhysicianName": "referring_physician",
        "StudyDescription": "description",
        "PatientName": "patient_name_in_files",
        "PatientID": "patient_id_in_files",
        "PatientBirthDate": "patient_birth_date_in_files",
        "PatientSex": "patient_sex_in_files",
        "StudyID": "study_id",
    },
    "series": {
        "SeriesInstanceUID": "series_instance_uid",
        "Modality": "modality",
        "SeriesNumber": "series_number",
        "SeriesDescription": "description",
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
BAD_INCLUDEFIELD = (
    "includefield names an unknown attribute: {name} (use a keyword, a tag as 8 hex digits, or all)."
)
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


def _wildcard_filter(column: str, value: str, *, ignore_case: bool = False) -> Q:
    lookup = "iregex" if ignore_case else "regex"
    if "*" not in value and "?" not in value:
        return Q(**{f"{column}__iexact" if ignore_case else column: value})
    pattern = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in value)
    return Q(**{f"{column}__{lookup}": f"^{pattern}$"})


def _name_filter(column: str, value: str, *, fuzzy: bool) -> Q:
    """PN matching: wildcards and case-insensitive; with ``fuzzymatching=true`` each word of the
    value matches the start of any name component ("smi" finds SMITH^JOHN and JONES^SMITHERS)."""
    if not fuzzy:
        return _wildcard_filter(column, value, ignore_case=True)
    condition = Q()
    for word in re.split(r"[\s^,*?]+", value):
        if word:
            condition &= Q(**{f"{column}__iregex": rf"(^|[\^ ]){re.escape(word)}"})
    return condition


def _key_filter(keyword: str, column: str, value: str, *, fuzzy: bool = False) -> Q:
    if keyword == "StudyDate":
        return _date_filter(column, value)
    if keyword == "PatientBirthDate":
        # Stored as written in the files (YYYYMMDD text): a range compares as text.
        if "-" in value:
            start, _, end = value.partition("-")
            for bound in (start, end):
                if bound:
                    _date(bound)  # refuses what is not a date
            condition = Q()
            if start:
                condition &= Q(**{f"{column}__gte": start})
            if end:
                condition &= Q(**{f"{column}__lte": end})
            return condition
        _date(value)
        return Q(**{column: value})
    if keyword in PERSON_NAMES:
        return _name_filter(column, value, fuzzy=fuzzy)
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
    fuzzy = params.get("fuzzymatching", "").lower() == "true"
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
                    name = name.strip()
                    if name == "all":
                        include_all = True
                    elif name:
                        tag = attribute_tag(name)
                        if tag is None:
                            raise QueryError(BAD_INCLUDEFIELD.format(name=name[:64]))
                        include.add(tag)
            continue
        keyword = _BY_TAG.get(key.upper(), key)
        owner = next((lvl for lvl in _LEVELS[level] if keyword in _FIELDS[lvl]), None)
        if owner is None:
            ignored.append(key)
            continue
        column = _PATH_TO.get((level, owner), "") + _FIELDS[owner][keyword]
        for value in values:
            if value:
                condition &= _key_filter(keyword, column, value, fuzzy=fuzzy)
    return Query(condition, min(limit, MAX_LIMIT), offset, include_all, include, ignored)
