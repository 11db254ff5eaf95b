"""DICOM PS3.15 Annex E, Basic Application Level Confidentiality Profile, applied to one dataset.

Which attribute gets which action (D: replace with a dummy, Z: empty, X: remove, U: new UID, and
the "or" combinations) comes from the dicom-anonymizer package's transcription of Table E.1-1
(release 2026c): a table of several hundred rows that the standard revises every year, better
kept by a project that tracks it than copied here. How the actions are carried out is ours:
UIDs are remapped consistently within one export and freshly for the next, nested sequences are
walked, private attributes and overlays are removed, and the two options are honoured:

- Retain Longitudinal Temporal Information with Full Dates (PS3.15 E.3.6): dates and times kept.
- Clean Descriptors (E.3.5): free-text descriptions (study, series, protocol, comments...) kept
  only when they hold none of the patient's identifying words; otherwise removed.

Whatever the options, any UID that is not a standard one (1.2.840.10008...) is remapped, and
the records say what was done (Patient Identity Removed, De-identification Method and its codes).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from dicomanonymizer.dicom_anonymization_databases import dicomfields_2026c as table
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.sequence import Sequence
from pydicom.tag import BaseTag, Tag
from pydicom.uid import generate_uid

STANDARD_UID_ROOT = "1.2.840.10008."
DUMMY_TEXT = "ANONYMIZED"
DATE_VRS = {"DA", "DT", "TM"}

# The descriptors the Clean Descriptors Option keeps when they are clean (Table E.1-1, column C).
DESCRIPTORS = {
    Tag(0x0008, 0x1030),  # Study Description
    Tag(0x0008, 0x103E),  # Series Description
    Tag(0x0018, 0x1030),  # Protocol Name
    Tag(0x0020, 0x4000),  # Image Comments
    Tag(0x0008, 0x2111),  # Derivation Description
    Tag(0x0040, 0x0254),  # Performed Procedure Step Description
    Tag(0x0032, 0x1060),  # Requested Procedure Description
    Tag(0x0018, 0x0015),  # Body Part Examined
    Tag(0x0040, 0x0007),  # Scheduled Procedure Step Description
}

# Codes of CID 7050 De-identification Method (PS3.16).
BASIC_PROFILE = ("113100", "Basic Application Confidentiality Profile")
RETAIN_DATES = ("113106", "Retain Longitudinal Temporal Information Full Dates Option")
CLEAN_DESCRIPTORS = ("113105", "Clean Descriptors Option")


def _tags(rows: Iterable[tuple[int, ...]]) -> tuple[set[BaseTag], list[tuple[int, int, int, int]]]:
    single: set[BaseTag] = set()
    masked: list[tuple[int, int, int, int]] = []
    for row in rows:
        if len(row) == 2:
            single.add(Tag(row[0], row[1]))
        else:
            masked.append((row[0], row[1], row[2], row[3]))
    return single, masked


# Action of each tag, strictest reading of each combination that keeps files valid: a Type 2
# attribute emptied rather than removed, a dummy where the profile allows one.
_ACTIONS: dict[str, str] = {
    "D_TAGS": "D",
    "Z_TAGS": "Z",
    "X_TAGS": "X",
    "U_TAGS": "U",
    "Z_D_TAGS": "Z",
    "X_Z_TAGS": "Z",
    "X_D_TAGS": "X",
    "X_Z_D_TAGS": "X",
    "X_Z_U_STAR_TAGS": "U*",
}
ACTION_OF: dict[BaseTag, str] = {}
MASKED: list[tuple[tuple[int, int, int, int], str]] = []
for _name, _action in _ACTIONS.items():
    _single, _masked = _tags(getattr(table, _name))
    for _tag in _single:
        ACTION_OF.setdefault(_tag, _action)
    MASKED.extend((_mask, _action) for _mask in _masked)


def action_for(tag: BaseTag) -> str | None:
    found = ACTION_OF.get(tag)
    if found is not None:
        return found
    for (group, element, group_mask, element_mask), action in MASKED:
        if (
            tag.group & group_mask == group & group_mask
            and tag.element & element_mask == element & element_mask
        ):
            return action
    return None


@dataclass(frozen=True)
class DeidOptions:
    retain_longitudinal_dates: bool = False
    clean_descriptors: bool = False

    def method(self) -> str:
        parts = ["SecondRead: PS3.15 Basic Application Level Confidentiality Profile"]
        if self.retain_longitudinal_dates:
            parts.append("Retain Longitudinal Temporal Information Full Dates Option")
        if self.clean_descriptors:
            parts.append("Clean Descriptors Option")
        return "; ".join(parts)[:64]

    def codes(self) -> list[tuple[str, str]]:
        return [
            BASIC_PROFILE,
            *([RETAIN_DATES] if self.retain_longitudinal_dates else []),
            *([CLEAN_DESCRIPTORS] if self.clean_descriptors else []),
        ]


@dataclass
class UidMap:
    """Old UID → new UID for one export: the same study, series and references stay linked inside
    the export, and nothing links it to the original or to another export."""

    mapping: dict[str, str] = field(default_factory=dict)

    def __call__(self, uid: str) -> str:
        uid = str(uid).strip()
        if not uid or uid.startswith(STANDARD_UID_ROOT):
            return uid
        if uid not in self.mapping:
            self.mapping[uid] = generate_uid()
        return self.mapping[uid]


def _dummy(element: DataElement, uids: UidMap) -> None:
    vr = element.VR
    if vr == "UI":
        element.value = _remap(element.value, uids)
    elif vr == "SQ":
        element.value = Sequence()
    elif vr in ("DA",):
        element.value = "19000101"
    elif vr == "DT":
        element.value = "19000101000000"
    elif vr == "TM":
        element.value = "000000"
    elif vr == "AS":
        element.value = "000Y"
    elif vr in ("DS", "IS"):
        element.value = "0"
    elif vr in ("FD", "FL", "SS", "US", "SL", "UL", "SV", "UV"):
        element.value = 0
    elif vr in ("OB", "OW", "OF", "OD", "OL", "OV", "UN"):
        element.value = b""
    elif vr == "UR":
        element.value = ""
    else:  # text: AE, CS, LO, LT, PN, SH, ST, UC, UT
        element.value = DUMMY_TEXT


def _remap(value: object, uids: UidMap) -> object:
    if isinstance(value, (list, tuple, MultiValue)):
        return [uids(str(item)) for item in value]
    return uids(str(value)) if value else value


def _identifying_words(ds: Dataset) -> set[str]:
    words: set[str] = set()
    for keyword in (
        "PatientName",
        "PatientID",
        "OtherPatientIDs",
        "OtherPatientNames",
        "PatientBirthName",
        "PatientMotherBirthName",
        "AccessionNumber",
        "PatientBirthDate",
    ):
        value = ds.get(keyword)
        if value:
            words |= {word.lower() for word in re.split(r"[\s^,\\=]+", str(value)) if len(word) >= 3}
    return words


def _clean(text: str, identifying: set[str]) -> bool:
    lowered = str(text).lower()
    return not any(word in lowered for word in identifying)


def _walk(ds: Dataset, uids: UidMap, options: DeidOptions, identifying: set[str]) -> None:
    for element in list(ds):
        tag = element.tag
        if (
            tag.is_private
            or (0x6000 <= tag.group <= 0x60FF and tag.group % 2 == 0)
            or (0x5000 <= tag.group <= 0x50FF)
        ):
            del ds[tag]
            continue
        action = action_for(tag)
        if options.retain_longitudinal_dates and element.VR in DATE_VRS and action in ("D", "Z", "X"):
            action = None  # the option keeps dates and times as they were
        if options.clean_descriptors and tag in DESCRIPTORS:
            action = None if _clean(str(element.value or ""), identifying) else "X"
        if action == "X":
            del ds[tag]
            continue
        if action in ("U", "U*") and element.VR not in ("UI", "SQ"):
            element.value = ""  # a "U" row that is not a UID (Station Name): emptied
            continue
        if action == "Z":
            element.value = (
                Sequence() if element.VR == "SQ" else (b"" if element.VR in ("OB", "OW", "UN") else "")
            )
            continue
        if action == "D":
            _dummy(element, uids)
            continue
        if element.VR == "SQ":
            for item in element.value or []:
                _walk(item, uids, options, identifying)
            continue
        if element.VR == "UI":
            # U and U*, and every other UID that is not the standard's own (SOP classes,
            # transfer syntaxes): a UID names an instance and can be looked up elsewhere.
            element.value = _remap(element.value, uids)


def dataset_deidentify(ds: Dataset, *, uids: UidMap, options: DeidOptions, pseudonym: str) -> None:
    """De-identify ``ds`` in place (file meta included). ``pseudonym`` becomes the Patient ID, so
    the images of one export still group by patient in any viewer."""
    identifying = _identifying_words(ds)
    _walk(ds, uids, options, identifying)
    ds.PatientName = ""
    ds.PatientID = pseudonym
    ds.PatientIdentityRemoved = "YES"
    ds.DeidentificationMethod = options.method()
    codes = []
    for value, meaning in options.codes():
        item = Dataset()
        item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = value, "DCM", meaning
        codes.append(item)
    ds.DeidentificationMethodCodeSequence = Sequence(codes)
    ds.LongitudinalTemporalInformationModified = (
        "UNMODIFIED" if options.retain_longitudinal_dates else "REMOVED"
    )
    if "SOPInstanceUID" in ds and hasattr(ds, "file_meta"):
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        for keyword in (
            "SourceApplicationEntityTitle",
            "SendingApplicationEntityTitle",
            "ReceivingApplicationEntityTitle",
            "PrivateInformation",
        ):
            if keyword in ds.file_meta:
                del ds.file_meta[keyword]


# Modalities whose pixels often carry the patient's name (ultrasound, secondary captures,
# photographs, scanned documents): left out unless the file says Burned In Annotation "NO".
BURNED_IN_MODALITIES = {"US", "SC", "XC", "ES", "GM", "SM", "OT", "DOC", "IVUS", "OP"}


def burned_in_risk(ds: Dataset) -> bool:
    said = str(ds.get("BurnedInAnnotation", "")).upper()
    if said == "YES":
        return True
    return said != "NO" and str(ds.get("Modality", "")).upper() in BURNED_IN_MODALITIES
