"""Report PDFs without active content.

A patient's PDF is read by staff in their signed-in browser. A PDF can carry JavaScript (document
open actions, page and field actions, name-tree scripts), actions that launch programs or submit
forms, embedded files and XFA forms; Chromium's own PDF viewer runs some of that even under
``Content-Security-Policy: sandbox``. At ingest qpdf (through pikepdf) rewrites the file with all
of it removed: that copy is what staff read (with pdf.js, scripting off). The bytes the patient
sent are kept beside it, offered only as a download.
"""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass
from typing import BinaryIO, cast

import pikepdf

from imaging.ingest import messages
from imaging.ingest.dicom import FileRejected

logger = logging.getLogger(__name__)

MiB = 1024 * 1024
MAX_DEPTH = 200  # nesting of direct objects; deeper is a hostile file, refused as damaged

# Keys that hold scripts, automatic actions, attachments or XFA wherever they appear.
ACTIVE_KEYS = (
    "/JS",
    "/JavaScript",
    "/AA",
    "/OpenAction",
    "/EmbeddedFiles",
    "/EmbeddedFile",
    "/XFA",
    "/RichMedia",
)
# Kinds of action that run code, open other files or programs, or send data somewhere.
ACTIVE_ACTIONS = frozenset(
    {
        "/JavaScript",
        "/Launch",
        "/SubmitForm",
        "/ImportData",
        "/ResetForm",
        "/GoToE",
        "/GoToR",
        "/Rendition",
        "/RichMediaExecute",
        "/Sound",
        "/Movie",
        "/Hide",
        "/SetOCGState",
    }
)
ACTIVE_ANNOTATIONS = frozenset({"/FileAttachment", "/RichMedia", "/Screen", "/Movie", "/Sound", "/3D"})


def report_original_key(storage_key: str) -> str:
    """Where the bytes the patient sent are kept, beside the rewritten report."""
    return f"{storage_key}.original"


@dataclass
class SafePdf:
    """The rewritten PDF and what was taken out of it (names of PDF keys, never content)."""

    file: BinaryIO
    removed: list[str]


def _is_active_action(value: object) -> bool:
    if not isinstance(value, pikepdf.Dictionary):
        return False
    kind = value.get("/S")
    return isinstance(kind, pikepdf.Name) and str(kind) in ACTIVE_ACTIONS


def _clean_dictionary(dictionary: pikepdf.Dictionary, removed: set[str]) -> None:
    for key in ACTIVE_KEYS:
        if key in dictionary:
            del dictionary[key]
            removed.add(key)
    action = dictionary.get("/A")
    if _is_active_action(action):
        del dictionary["/A"]
        removed.add(str(action.get("/S")))  # type: ignore[union-attr]
    if str(dictionary.get("/Subtype", "")) in ACTIVE_ANNOTATIONS and dictionary.get("/Type") == "/Annot":
        # Neutralised in place (the page's /Annots array still points at it): drawn as nothing.
        for key in list(dictionary.keys()):
            if key not in ("/Type", "/Rect"):
                del dictionary[key]
        dictionary["/Subtype"] = pikepdf.Name("/Text")
        dictionary["/F"] = 2  # hidden
        removed.add("annotation")


def _clean(obj: object, removed: set[str], *, depth: int) -> None:
    """Clean ``obj`` and the direct objects nested in it (indirect ones are each visited from
    ``pdf.objects``)."""
    if depth > MAX_DEPTH:
        raise RecursionError
    if isinstance(obj, pikepdf.Stream):
        obj = obj.stream_dict
    if isinstance(obj, pikepdf.Dictionary):
        _clean_dictionary(obj, removed)
        children = [value for _, value in obj.items()]
    elif isinstance(obj, pikepdf.Array):
        children = list(obj)
    else:
        return
    for child in children:
        if isinstance(child, pikepdf.Dictionary | pikepdf.Array) and not child.is_indirect:
            _clean(child, removed, depth=depth + 1)


def pdf_make_safe(fp: BinaryIO) -> SafePdf:
    """Rewrite the PDF in ``fp`` without active content; raise :class:`FileRejected` if qpdf
    cannot open it. Precondition: ``fp`` is seekable and positioned anywhere."""
    fp.seek(0)
    removed: set[str] = set()
    try:
        with pikepdf.open(fp) as pdf:
            root = pdf.Root
            for key in ("/OpenAction", "/AA"):
                if key in root:
                    del root[key]
                    removed.add(key)
            names = root.get("/Names")
            if isinstance(names, pikepdf.Dictionary):
                for key in ("/JavaScript", "/EmbeddedFiles"):
                    if key in names:
                        del names[key]
                        removed.add(key)
            acroform = root.get("/AcroForm")
            if isinstance(acroform, pikepdf.Dictionary) and "/XFA" in acroform:
                del acroform["/XFA"]
                removed.add("/XFA")
            for obj in pdf.objects:
                _clean(obj, removed, depth=0)
            out = tempfile.SpooledTemporaryFile(max_size=16 * MiB)  # noqa: SIM115 (returned)
            pdf.save(cast(BinaryIO, out), fix_metadata_version=False, deterministic_id=True)
    except pikepdf.PasswordError:
        raise FileRejected("report_refused", messages.REPORT_DAMAGED_PDF) from None
    except (pikepdf.PdfError, RecursionError, ValueError, OSError):
        raise FileRejected("report_refused", messages.REPORT_DAMAGED_PDF) from None
    out.seek(0)
    if removed:
        logger.info("report PDF rewritten without active content", extra={"removed": sorted(removed)})
    return SafePdf(file=cast(BinaryIO, out), removed=sorted(removed))
