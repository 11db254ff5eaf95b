"""The attributes QIDO-RS answers with, per level, and how ``includefield`` picks them
(PS3.18 §10.6.3.3, Tables 10.6.3-3 to 10.6.3-5).

Each attribute is read from the database rows ingest wrote, so a search never opens a file. A
study-level search returns the study attributes the standard requires; ``includefield`` adds
others by keyword or tag, ``includefield=all`` every one this server keeps (at a lower level the
higher levels' attributes are included too, as the standard allows). A tag this table does not
know is read from the header of the first instance of the result (its cached metadata), so any
attribute in the files can be asked for.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydicom.datadict import dictionary_VR, keyword_for_tag, tag_for_keyword

from imaging.models import Instance, Series, Study

# Every stored instance is online: nothing is archived to nearline storage.
ONLINE = "ONLINE"


def _date(value: dt.date | None) -> str | None:
    return value.strftime("%Y%m%d") if value else None


def element(vr: str, *values: Any) -> dict[str, Any]:
    """A DICOM JSON attribute; empty values give an attribute with no Value, as the model says."""
    kept = [value for value in values if value not in (None, "")]
    if vr == "PN":
        kept = [{"Alphabetic": str(value)} for value in kept]
    return {"vr": vr, "Value": kept} if kept else {"vr": vr}


@dataclass(frozen=True)
class Attribute:
    keyword: str
    vr: str
    read: Callable[[Any], list[Any]]
    required: bool  # returned by every search of its level (PS3.18 Table 10.6.3-3)

    @property
    def tag(self) -> str:
        return f"{tag_for_keyword(self.keyword):08X}"


def _study(keyword: str, vr: str, read: Callable[[Study], Any], required: bool = True) -> Attribute:
    def values(study: Study) -> list[Any]:
        value = read(study)
        return value if isinstance(value, list) else [value]

    return Attribute(keyword, vr, values, required)


STUDY: tuple[Attribute, ...] = (
    _study("StudyDate", "DA", lambda s: _date(s.study_date)),
    _study("StudyTime", "TM", lambda s: s.study_time),
    _study("AccessionNumber", "SH", lambda s: s.accession_number),
    _study("InstanceAvailability", "CS", lambda s: ONLINE),
    _study("ModalitiesInStudy", "CS", lambda s: [m for m in s.modalities.split(",") if m]),
    _study("ReferringPhysicianName", "PN", lambda s: s.referring_physician),
    _study("StudyDescription", "LO", lambda s: s.description),
    _study("PatientName", "PN", lambda s: s.patient_name_in_files),
    _study("PatientID", "LO", lambda s: s.patient_id_in_files),
    _study("PatientBirthDate", "DA", lambda s: s.patient_birth_date_in_files),
    _study("PatientSex", "CS", lambda s: s.patient_sex_in_files),
    _study("StudyInstanceUID", "UI", lambda s: s.study_instance_uid),
    _study("StudyID", "SH", lambda s: s.study_id),
    _study("NumberOfStudyRelatedSeries", "IS", lambda s: getattr(s, "n_series", s.series_count)),
    _study("NumberOfStudyRelatedInstances", "IS", lambda s: getattr(s, "n_instances", s.instance_count)),
    _study("BodyPartExamined", "CS", lambda s: s.body_part, required=False),
)


def _series(keyword: str, vr: str, read: Callable[[Series], Any], required: bool = True) -> Attribute:
    return Attribute(keyword, vr, lambda series: [read(series)], required)


SERIES: tuple[Attribute, ...] = (
    _series("Modality", "CS", lambda s: s.modality),
    _series("SeriesDescription", "LO", lambda s: s.description),
    _series("SeriesInstanceUID", "UI", lambda s: s.series_instance_uid),
    _series("SeriesNumber", "IS", lambda s: s.series_number),
    _series("NumberOfSeriesRelatedInstances", "IS", lambda s: getattr(s, "n_instances", s.instance_count)),
    _series("BodyPartExamined", "CS", lambda s: s.body_part, required=False),
)


def _instance(keyword: str, vr: str, read: Callable[[Instance], Any], required: bool = True) -> Attribute:
    return Attribute(keyword, vr, lambda instance: [read(instance)], required)


INSTANCE: tuple[Attribute, ...] = (
    _instance("SOPClassUID", "UI", lambda i: i.sop_class_uid),
    _instance("SOPInstanceUID", "UI", lambda i: i.sop_instance_uid),
    _instance("InstanceAvailability", "CS", lambda i: ONLINE),
    _instance("InstanceNumber", "IS", lambda i: i.instance_number),
    _instance("Rows", "US", lambda i: i.rows),
    _instance("Columns", "US", lambda i: i.columns),
    _instance("BitsAllocated", "US", lambda i: i.bits_allocated),
    _instance("NumberOfFrames", "IS", lambda i: i.number_of_frames),
    # Not in Table 10.6.3-5, but viewers ask for it before fetching frames.
    _instance("AvailableTransferSyntaxUID", "UI", lambda i: i.transfer_syntax_uid),
)

LEVEL_ATTRIBUTES: dict[str, tuple[Attribute, ...]] = {"study": STUDY, "series": SERIES, "instance": INSTANCE}
# The levels whose attributes a search of each level can return, and how to reach their row.
REACH: dict[str, tuple[tuple[str, Callable[[Any], Any]], ...]] = {
    "study": (("study", lambda study: study),),
    "series": (("series", lambda series: series), ("study", lambda series: series.study)),
    "instance": (
        ("instance", lambda instance: instance),
        ("series", lambda instance: instance.series),
        ("study", lambda instance: instance.series.study),
    ),
}
# The UIDs a result always carries, so a client can name what it found.
ALWAYS = {"study": (), "series": ("StudyInstanceUID",), "instance": ("StudyInstanceUID", "SeriesInstanceUID")}


def attribute_tag(name: str) -> str | None:
    """The 8-hex-digit tag of ``name`` (a keyword, or a tag as 8 hex digits); None if unknown."""
    if len(name) == 8:
        try:
            int(name, 16)
            return name.upper()
        except ValueError:
            pass
    tag = tag_for_keyword(name)
    return f"{tag:08X}" if tag is not None else None


@dataclass(frozen=True)
class Selection:
    """Which attributes to answer with: from the rows, and tags to read from a file's header."""

    from_rows: tuple[tuple[str, Attribute], ...]  # (level the row is at, attribute)
    from_header: tuple[str, ...]


def selection_for(level: str, *, include: set[str], include_all: bool) -> Selection:
    """The attributes of a ``level`` search: the required ones, plus those ``include`` names
    (tags, already upper-case 8 hex digits), or every kept one when ``include_all``."""
    chosen: list[tuple[str, Attribute]] = []
    known: set[str] = set()
    for reach_level, _ in REACH[level]:
        for attribute in LEVEL_ATTRIBUTES[reach_level]:
            wanted = (
                include_all
                or attribute.tag in include
                or (reach_level == level and attribute.required)
                or attribute.keyword in ALWAYS[level]
            )
            if wanted and attribute.tag not in known:
                chosen.append((reach_level, attribute))
                known.add(attribute.tag)
    extra = tuple(sorted(tag for tag in include if tag not in known and keyword_for_tag(int(tag, 16))))
    return Selection(tuple(chosen), extra)


def row_json(level: str, row: Any, selection: Selection, retrieve_url: str) -> dict[str, Any]:
    """One search result as DICOM JSON, keys in tag order."""
    reach = dict(REACH[level])
    out: dict[str, Any] = {"00081190": element("UR", retrieve_url)}
    for reach_level, attribute in selection.from_rows:
        out[attribute.tag] = element(attribute.vr, *attribute.read(reach[reach_level](row)))
    return dict(sorted(out.items()))


def header_values(metadata: dict[str, Any], tags: tuple[str, ...]) -> dict[str, Any]:
    """The ``tags`` of one instance's DICOM JSON metadata; absent ones as empty attributes."""
    out: dict[str, Any] = {}
    for tag in tags:
        if tag in metadata:
            out[tag] = metadata[tag]
        else:
            try:
                out[tag] = {"vr": dictionary_VR(int(tag, 16))}
            except KeyError:
                continue
    return out
