"""Reports a patient uploads (PDFs, photos of paper reports) and linking them to studies.

A report is checked to really be what it says: a PDF must start like one and open with pypdf
(a web page renamed ``.pdf`` is refused with a message saying what to do); a photo must open
with Pillow and is re-encoded, which drops its metadata (GPS position, camera owner).

Matching reads the report's text for dates, kinds of scan, body parts and accession numbers:
an accession number that equals a study's wins; otherwise date and kind of scan must agree
(body part breaks ties); otherwise the report is left for staff, with the reason in words.

A little over 400 lines on purpose: checking a report and matching it to a study read the same
text, and the matching rules are easiest to check against each other on one page.
"""

# long module: checking a report (PDF or photo) and matching it to a study use the same
# parsed facts (dates, accession, modality); each half alone would pass them around loosely.

from __future__ import annotations

import calendar
import contextlib
import logging
import posixpath
import re
import shutil
import tempfile
import uuid
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from typing import BinaryIO

from django.db import transaction
from PIL import Image, ImageOps
from pypdf import PdfReader

from imaging.cases import CaseRow
from imaging.ingest import messages
from imaging.ingest.dicom import FileRejected
from imaging.ingest.pdf_safety import pdf_make_safe, report_original_key
from imaging.models import FileProblem, Report, Study, Upload
from storage.tenant import tenant_storage

logger = logging.getLogger(__name__)
# pypdf's warnings may quote bits of the document: patient data, kept out of our logs.
logging.getLogger("pypdf").setLevel(logging.ERROR)

MiB = 1024 * 1024
MAX_REPORT_BYTES = 100 * MiB
MAX_TEXT_PAGES = 50
MAX_TEXT_CHARS = 200_000
MAX_PHOTO_PIXELS = 80_000_000  # a 12,000 × 6,600 phone panorama; more is not a photo of paper

# -- what the file is -----------------------------------------------------------------------


@dataclass
class CheckedReport:
    content_type: str
    text: str
    # The bytes to store instead of the original: photos re-encoded (metadata stripped), PDFs
    # rewritten without active content.
    replacement: BinaryIO | None = None
    # Whether the original is kept too (beside the replacement, for download only).
    keeps_original: bool = False


def _looks_like_html(head: bytes) -> bool:
    start = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    return start.startswith((b"<!doctype html", b"<html", b"<head", b"<body", b"<meta")) or (
        start.startswith(b"<") and b"<html" in head.lower()
    )


def pdf_text(fp: BinaryIO) -> str:
    """The text of a PDF's first pages; raises :class:`FileRejected` if it does not open."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            reader = PdfReader(fp, strict=False)
            if reader.is_encrypted and not reader.decrypt(""):
                raise FileRejected("report_refused", messages.REPORT_DAMAGED_PDF)
            pages = reader.pages
            if len(pages) == 0:
                raise FileRejected("report_refused", messages.REPORT_DAMAGED_PDF)
            texts: list[str] = []
            total = 0
            for index in range(min(len(pages), MAX_TEXT_PAGES)):
                try:
                    text = pages[index].extract_text() or ""
                except Exception:  # one unreadable page leaves the others' text
                    text = ""
                texts.append(text)
                total += len(text)
                if total > MAX_TEXT_CHARS:
                    break
    except FileRejected:
        raise
    except RecursionError:
        raise FileRejected("report_refused", messages.REPORT_DAMAGED_PDF) from None
    except Exception:
        raise FileRejected("report_refused", messages.REPORT_DAMAGED_PDF) from None
    return "\n".join(texts)[:MAX_TEXT_CHARS].replace("\x00", "")


def photo_reencode(fp: BinaryIO, *, is_png: bool) -> BinaryIO:
    """Open, verify and re-encode a photo without its metadata; return the new bytes."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(fp) as probe:
                probe.verify()
            fp.seek(0)
            with Image.open(fp) as image:
                if image.width * image.height > MAX_PHOTO_PIXELS:
                    raise FileRejected("report_refused", messages.REPORT_DAMAGED_IMAGE)
                image.load()
                upright = ImageOps.exif_transpose(image)
                out = tempfile.SpooledTemporaryFile(max_size=8 * MiB)  # noqa: SIM115 (returned)
                if is_png:
                    mode = upright.mode if upright.mode in ("RGB", "RGBA", "L", "LA") else "RGBA"
                    upright.convert(mode).save(out, format="PNG")
                else:
                    mode = "L" if upright.mode in ("L", "1") else "RGB"
                    upright.convert(mode).save(out, format="JPEG", quality=90)
    except FileRejected:
        raise
    except Exception:
        raise FileRejected("report_refused", messages.REPORT_DAMAGED_IMAGE) from None
    out.seek(0)
    return out  # type: ignore[return-value]


def report_file_check(fp: BinaryIO, size: int) -> CheckedReport:
    """Decide what a report file is. Precondition: ``fp`` is seekable and ``size`` bytes long."""
    if size == 0:
        raise FileRejected("report_refused", messages.REPORT_EMPTY)
    if size > MAX_REPORT_BYTES:
        raise FileRejected(
            "report_refused", messages.REPORT_TOO_LARGE.format(limit_mb=MAX_REPORT_BYTES // MiB)
        )
    fp.seek(0)
    head = fp.read(1024)
    fp.seek(0)
    if b"%PDF-" in head:
        text = pdf_text(fp)
        return CheckedReport("application/pdf", text, pdf_make_safe(fp).file, keeps_original=True)
    if _looks_like_html(head):
        raise FileRejected("report_refused", messages.REPORT_HTML)
    if head[:3] == b"\xff\xd8\xff":
        return CheckedReport("image/jpeg", "", photo_reencode(fp, is_png=False))
    if head[:8] == b"\x89PNG\r\n\x1a\n":
        return CheckedReport("image/png", "", photo_reencode(fp, is_png=True))
    raise FileRejected("report_refused", messages.REPORT_UNSUPPORTED)


@contextlib.contextmanager
def seekable_upload(upload: Upload) -> Iterator[tuple[BinaryIO, int]]:
    """The bytes of an upload as a seekable file, and their size (spooled from object storage)."""
    storage = tenant_storage()
    size = storage.size(upload.storage_key)
    with storage.open(upload.storage_key) as reader:
        if reader.seekable():
            yield reader, size
            return
        with tempfile.TemporaryFile() as scratch:
            shutil.copyfileobj(reader, scratch, MiB)
            scratch.seek(0)
            yield scratch, size


def report_ingest(*, upload: Upload) -> Report | None:
    """Check, store and match the report of ``upload``; None (and a FileProblem) if refused.

    Idempotent: a second run for the same upload returns the report the first one made.
    """
    existing = Report.objects.filter(upload=upload).first()
    if existing is not None:
        return existing
    case = upload.case
    name = posixpath.basename(
        str(upload.metadata.get("filename") or upload.relative_path or "").replace("\\", "/")
    )[:255]
    kind = str(upload.metadata.get("reportKind") or "")
    if kind not in Report.Kind.values:
        kind = Report.Kind.UNKNOWN  # the patient is asked
    try:
        with seekable_upload(upload) as (fp, size):
            checked = report_file_check(fp, size)
            key = f"reports/{case.public_id}/{uuid.uuid4().hex}"
            storage = tenant_storage()
            if checked.keeps_original:
                fp.seek(0)
                storage.save(report_original_key(key), fp, size)
            if checked.replacement is not None:
                with checked.replacement as replacement:
                    stored = storage.save(key, replacement)
            else:
                fp.seek(0)
                stored = storage.save(key, fp, size)
    except FileRejected as rejected:
        FileProblem.objects.create(
            case=case,
            upload=upload,
            path=upload.relative_path[:1000],
            code=FileProblem.Code.REPORT_REFUSED,
            message=rejected.message,
        )
        return None
    report = Report.objects.create(
        case=case,
        upload=upload,
        kind=kind,
        original_name=name,
        content_type=checked.content_type,
        storage_key=key,
        size=stored,
        extracted_text=checked.text,
    )
    return report_match(report=report)


# -- what the text says ---------------------------------------------------------------------

_MONTHS = {name.lower(): number for number, name in enumerate(calendar.month_name) if name}
_MONTHS.update({name.lower(): number for number, name in enumerate(calendar.month_abbr) if name})
_MONTHS["sept"] = 9
_MONTH = (
    r"(jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?"
    r"|sept?(?:ember)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)"
)
_DATE_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"\b(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})\b"), "ymd"),
    (re.compile(r"\b(\d{1,2})[-/.](\d{1,2})[-/.](\d{4})\b"), "either"),
    (re.compile(r"\b(\d{1,2})(?:st|nd|rd|th)?\s+" + _MONTH + r"\.?,?\s+(\d{4})\b", re.I), "d_month_y"),
    (re.compile(r"\b" + _MONTH + r"\.?\s+(\d{1,2})(?:st|nd|rd|th)?,?\s+(\d{4})\b", re.I), "month_d_y"),
    (re.compile(r"\b((?:19|20)\d{2})(\d{2})(\d{2})\b"), "ymd"),
)

# Words for kinds of scan, and the DICOM modality codes they mean.
MODALITY_WORDS: tuple[tuple[re.Pattern[str], frozenset[str]], ...] = (
    (re.compile(r"\bPET(?:[-/ ]?CT)?\b|positron emission", re.I), frozenset({"PT"})),
    (re.compile(r"\bPET[-/ ]?CT\b", re.I), frozenset({"PT", "CT"})),
    (re.compile(r"\bCT\b|\bCTA\b|computed tomograph|\bCAT scan", re.I), frozenset({"CT"})),
    (re.compile(r"\bMRI?\b|\bMRA\b|magnetic resonance", re.I), frozenset({"MR"})),
    (
        re.compile(r"ultrasound|sonograph|\bechograph|doppler|\bUS\b(?= of| abdomen| pelvis)", re.I),
        frozenset({"US"}),
    ),
    (re.compile(r"\bx-?ray|radiograph", re.I), frozenset({"CR", "DX", "RF"})),
    (re.compile(r"mammogra", re.I), frozenset({"MG"})),
    (re.compile(r"nuclear medicine|scintigra|\bSPECT\b|bone scan", re.I), frozenset({"NM"})),
    (re.compile(r"angiogra", re.I), frozenset({"XA", "CT", "MR"})),
)

# Words for body parts, and the BodyPartExamined values (and description words) they mean.
BODY_PART_WORDS: tuple[tuple[re.Pattern[str], frozenset[str]], ...] = (
    (re.compile(r"\bbrain|\bhead\b|\bcrani|\bskull|\bcerebr", re.I), frozenset({"HEAD", "BRAIN", "SKULL"})),
    (re.compile(r"cervical spine|c-spine", re.I), frozenset({"CSPINE", "SPINE", "NECK"})),
    (re.compile(r"thoracic spine|t-spine", re.I), frozenset({"TSPINE", "SPINE"})),
    (re.compile(r"lumbar|l-spine", re.I), frozenset({"LSPINE", "SPINE"})),
    (re.compile(r"\bspine\b|\bspinal", re.I), frozenset({"SPINE", "CSPINE", "TSPINE", "LSPINE"})),
    (re.compile(r"\bchest|\bthora|\blungs?\b|pulmonary", re.I), frozenset({"CHEST", "THORAX", "LUNG"})),
    (re.compile(r"abdom", re.I), frozenset({"ABDOMEN"})),
    (re.compile(r"pelvi", re.I), frozenset({"PELVIS"})),
    (re.compile(r"\bneck\b", re.I), frozenset({"NECK"})),
    (re.compile(r"\bbreast", re.I), frozenset({"BREAST"})),
    (re.compile(r"\bknee", re.I), frozenset({"KNEE"})),
    (re.compile(r"\bshoulder", re.I), frozenset({"SHOULDER"})),
    (re.compile(r"\bhip\b", re.I), frozenset({"HIP"})),
    (re.compile(r"\bliver|hepat", re.I), frozenset({"LIVER", "ABDOMEN"})),
    (re.compile(r"\bheart\b|cardiac", re.I), frozenset({"HEART"})),
    (re.compile(r"whole body", re.I), frozenset({"WHOLEBODY", "WHOLE BODY"})),
)

_ACCESSION = re.compile(
    r"\b(?:accession|acc)(?:\s*(?:no|number|num|nr|#))?\.?\s*[:#]?\s*([A-Z0-9][A-Z0-9-]{2,30})\b", re.I
)


@dataclass
class ReportFacts:
    dates: set[date] = field(default_factory=set)
    modalities: set[str] = field(default_factory=set)
    body_parts: set[str] = field(default_factory=set)
    accession_numbers: set[str] = field(default_factory=set)


def _date_add(found: set[date], year: int, month: int, day: int) -> None:
    if 1900 <= year <= 2100:
        with contextlib.suppress(ValueError):
            found.add(date(year, month, day))


def report_facts_extract(text: str) -> ReportFacts:
    """Dates, modality codes, body parts and accession numbers named in a report's text."""
    facts = ReportFacts()
    for pattern, form in _DATE_PATTERNS:
        for match in pattern.finditer(text):
            a, b, c = match.groups()
            if form == "ymd":
                _date_add(facts.dates, int(a), int(b), int(c))
            elif form == "either":
                # 03/04/2024 is 3 April in most of the world and March 4 in the US: keep both.
                _date_add(facts.dates, int(c), int(b), int(a))
                _date_add(facts.dates, int(c), int(a), int(b))
            elif form == "d_month_y":
                _date_add(facts.dates, int(c), _month(b), int(a))
            else:
                _date_add(facts.dates, int(c), _month(a), int(b))
    for pattern, codes in MODALITY_WORDS:
        if pattern.search(text):
            facts.modalities |= codes
    for pattern, parts in BODY_PART_WORDS:
        if pattern.search(text):
            facts.body_parts |= parts
    facts.accession_numbers = {match.group(1).upper() for match in _ACCESSION.finditer(text)}
    return facts


def _month(word: str) -> int:
    return _MONTHS.get(word.lower().rstrip("."), 0) or _MONTHS.get(word.lower()[:3], 0)


# -- matching -------------------------------------------------------------------------------


def _study_modalities(study: Study) -> set[str]:
    return {code.strip().upper() for code in study.modalities.split(",") if code.strip()}


def _study_body_words(study: Study) -> set[str]:
    words = set(re.split(r"[^A-Z]+", f"{study.body_part} {study.description}".upper())) - {""}
    if study.body_part:
        words.add(study.body_part.upper())
    return words


def _accession_in_text(accession: str, text: str) -> bool:
    accession = accession.strip()
    if len(accession) < 4:  # "1" or "12" would appear anywhere
        return False
    return re.search(r"(?<![A-Za-z0-9])" + re.escape(accession) + r"(?![A-Za-z0-9])", text, re.I) is not None


def _report_match_set(report: Report, *, status: str, study: Study | None, reason: str) -> Report:
    report.match_status = status
    report.study = study
    report.match_reason = reason
    report.save(update_fields=["match_status", "study", "match_reason"])
    return report


def report_match(*, report: Report) -> Report:
    """Link ``report`` to the study its text describes, or say why not. Never overrides staff."""
    if report.match_status == Report.Match.CORRECTED:
        return report
    studies = list(Study.objects.included().filter(case_id=report.case_id).order_by("study_date", "id"))
    text = report.extracted_text or ""
    if not studies:
        return _report_match_set(
            report, status=Report.Match.PENDING, study=None, reason=messages.UNMATCHED_NO_STUDIES
        )
    if not text.strip():
        return _report_match_set(
            report, status=Report.Match.UNMATCHED, study=None, reason=messages.UNMATCHED_NO_TEXT
        )
    facts = report_facts_extract(text)
    by_accession = [
        study
        for study in studies
        if study.accession_number
        and (
            study.accession_number.strip().upper() in facts.accession_numbers
            or _accession_in_text(study.accession_number, text)
        )
    ]
    if len(by_accession) == 1:
        return _report_match_set(
            report, status=Report.Match.MATCHED, study=by_accession[0], reason=messages.MATCH_ACCESSION
        )
    if not facts.dates:
        return _report_match_set(
            report, status=Report.Match.UNMATCHED, study=None, reason=messages.UNMATCHED_NO_DATE
        )
    candidates = [
        study
        for study in studies
        if study.study_date in facts.dates and _study_modalities(study) & facts.modalities
    ]
    reason = messages.MATCH_DATE_MODALITY
    if len(candidates) > 1 and facts.body_parts:
        by_body = [study for study in candidates if _study_body_words(study) & facts.body_parts]
        if by_body:
            candidates, reason = by_body, messages.MATCH_DATE_MODALITY_BODY
    if len(candidates) == 1:
        return _report_match_set(report, status=Report.Match.MATCHED, study=candidates[0], reason=reason)
    if candidates:
        return _report_match_set(
            report, status=Report.Match.UNMATCHED, study=None, reason=messages.UNMATCHED_AMBIGUOUS
        )
    return _report_match_set(
        report, status=Report.Match.UNMATCHED, study=None, reason=messages.UNMATCHED_NO_MATCH
    )


def case_reports_match(*, case: CaseRow) -> int:
    """Match again every report of ``case`` that staff did not set (new studies arrived)."""
    reports = Report.objects.filter(case=case).exclude(match_status=Report.Match.CORRECTED)
    count = 0
    for report in reports:
        report_match(report=report)
        count += 1
    return count


def report_match_set(*, report: Report, study: Study | None) -> Report:
    """Staff's correction: link ``report`` to ``study`` (or to none). Automatic matching never
    changes it afterwards. Precondition: the caller checked the user may edit this case; the
    study must belong to the report's case (ValueError otherwise, nothing changed)."""
    if study is not None and study.case_id != report.case_id:
        raise ValueError("The study belongs to another case.")
    with transaction.atomic():
        reason = messages.MATCH_CORRECTED if study is not None else messages.MATCH_CORRECTED_NONE
        return _report_match_set(report, status=Report.Match.CORRECTED, study=study, reason=reason)


__all__ = [
    "case_reports_match",
    "report_facts_extract",
    "report_file_check",
    "report_ingest",
    "report_match",
    "report_match_set",
]
