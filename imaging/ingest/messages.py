"""What we tell a patient (and staff) about a file, in plain words. Tests reuse these constants.

Messages never repeat file names or anything read from a file: the path is kept beside the
message (FileProblem.path) and shown by the page that knows who is looking.
"""

from __future__ import annotations

from django.utils.translation import gettext_noop

# Imaging files.
NOT_DICOM = gettext_noop(
    "This file is not a medical image (DICOM), so we set it aside. Your other files are kept."
)
PROGRAM_NOT_IMAGE = gettext_noop("This file is a program, not a medical image, so we did not keep it.")
PROGRAM_SKIPPED = gettext_noop(
    "This is a viewer program or system file from the disc; it is not needed and was skipped."
)
EMPTY_FILE = gettext_noop("This file is empty (0 bytes), so there was nothing to keep.")
TRUNCATED = gettext_noop(
    "This image file is incomplete or damaged (it ends too early), so we could not keep it. "
    "If you still have the disc, try copying it again."
)
UNREADABLE = gettext_noop("We could not read this image file, so we set it aside. Your other files are kept.")
TOO_DEEPLY_NESTED = gettext_noop(
    "This image file is built in an unusual way we cannot read safely, so we set it aside."
)
MISSING_IDENTIFIERS = gettext_noop(
    "This image file lacks the identifiers that place it in a study, so we could not keep it."
)
DUPLICATE = gettext_noop("This image was already uploaded; we kept one copy.")
PREAMBLE_CLEARED = gettext_noop(
    "This image file carried unexpected data in its header, which we removed for safety. "
    "The image itself is kept."
)
INCONSISTENT_PATIENT = gettext_noop(
    "The images seem to belong to more than one person (different names or dates of birth "
    "in the files). Please check that you uploaded only this patient's images."
)
MISSING_FILES = gettext_noop(
    "The disc's index lists images that were not in the upload. Some images may be missing; "
    "if you still have the disc, try uploading the whole disc again."
)

# Archives (zips).
UNSAFE_ENTRY = gettext_noop(
    "This entry of the zip points outside the zip or is a link, so we skipped it for safety."
)
NESTED_ARCHIVE = gettext_noop(
    "This is a zip inside the zip. We do not open archives inside archives: please upload it on its own."
)
ARCHIVE_TOO_MANY_FILES = gettext_noop(
    "This zip holds too many files for us to open safely (more than {limit:,}). "
    "Please upload the folder instead, or split it into smaller zips."
)
ARCHIVE_TOO_LARGE = gettext_noop(
    "This zip would unpack to more than {limit_gb:,} GB, more than we accept. "
    "Please upload the folder instead, or split it into smaller zips."
)
ARCHIVE_BOMB = gettext_noop(
    "This zip is packed in a way that would expand to far more data than it holds, "
    "which is how harmful zips are made. We did not open it."
)
ARCHIVE_ENTRY_BOMB = gettext_noop(
    "This entry of the zip expands to far more data than it holds, so we skipped it for safety."
)
ARCHIVE_DAMAGED = gettext_noop(
    "This zip is damaged or incomplete, so we could not open it. Please make it again."
)

# Reports.
REPORT_HTML = gettext_noop(
    "This file is a web page saved with a .pdf name, not a real PDF. "
    "Please open it and use Print → Save as PDF, then upload that file."
)
REPORT_DAMAGED_PDF = gettext_noop(
    "This PDF is damaged or protected and could not be opened. Please upload another copy."
)
REPORT_DAMAGED_IMAGE = gettext_noop(
    "This photo could not be opened. Please take the photo again as JPEG or PNG."
)
REPORT_UNSUPPORTED = gettext_noop("Reports must be PDF files or photos (JPEG or PNG). This file is neither.")
REPORT_TOO_LARGE = gettext_noop("This report file is larger than we accept ({limit_mb} MB).")
REPORT_EMPTY = gettext_noop("This report file is empty (0 bytes).")

# Whole uploads.
UPLOAD_FAILED = gettext_noop("Something went wrong while processing this file. Our team has been told.")
# For staff (Upload.system_problem), never the patient, who reads that the files are still
# being checked: our storage failed, not their file.
STORAGE_FAILING = gettext_noop(
    "Our file storage failed while these files were being processed (a system problem, not the "
    "patient's files). Processing is retried automatically; nothing was lost."
)

# Report matching (Report.match_reason).
MATCH_ACCESSION = gettext_noop("The accession number in the report matches this study.")
MATCH_DATE_MODALITY = gettext_noop("The date and type of scan in the report match this study.")
MATCH_DATE_MODALITY_BODY = gettext_noop(
    "The date, type of scan and body part in the report match this study."
)
UNMATCHED_NO_TEXT = gettext_noop("No text could be read from this report, so staff will link it to a study.")
UNMATCHED_NO_STUDIES = gettext_noop("No images have been processed yet; we will try again when they are.")
UNMATCHED_NO_DATE = gettext_noop("The report names no date we could read, so staff will link it to a study.")
UNMATCHED_NO_MATCH = gettext_noop("No uploaded study has the date and type of scan named in the report.")
UNMATCHED_AMBIGUOUS = gettext_noop("Several studies fit this report, so staff will choose the right one.")
MATCH_CORRECTED = gettext_noop("Linked to this study by staff.")
MATCH_CORRECTED_NONE = gettext_noop("Staff marked this report as not belonging to any uploaded study.")
