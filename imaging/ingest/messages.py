"""What we tell a patient (and staff) about a file, in plain words. Tests reuse these constants.

Messages never repeat file names or anything read from a file: the path is kept beside the
message (FileProblem.path) and shown by the page that knows who is looking.
"""

from __future__ import annotations

# Imaging files.
NOT_DICOM = "This file is not a medical image (DICOM), so we set it aside. Your other files are kept."
PROGRAM_NOT_IMAGE = "This file is a program, not a medical image, so we did not keep it."
PROGRAM_SKIPPED = "This is a viewer program or system file from the disc; it is not needed and was skipped."
EMPTY_FILE = "This file is empty (0 bytes), so there was nothing to keep."
TRUNCATED = (
    "This image file is incomplete or damaged (it ends too early), so we could not keep it. "
    "If you still have the disc, try copying it again."
)
UNREADABLE = "We could not read this image file, so we set it aside. Your other files are kept."
TOO_DEEPLY_NESTED = "This image file is built in an unusual way we cannot read safely, so we set it aside."
MISSING_IDENTIFIERS = (
    "This image file lacks the identifiers that place it in a study, so we could not keep it."
)
DUPLICATE = "This image was already uploaded; we kept one copy."
PREAMBLE_CLEARED = (
    "This image file carried unexpected data in its header, which we removed for safety. "
    "The image itself is kept."
)
INCONSISTENT_PATIENT = (
    "The images seem to belong to more than one person (different names or dates of birth "
    "in the files). Please check that you uploaded only this patient's images."
)
MISSING_FILES = (
    "The disc's index lists images that were not in the upload. Some images may be missing; "
    "if you still have the disc, try uploading the whole disc again."
)

# Archives (zips).
UNSAFE_ENTRY = "This entry of the zip points outside the zip or is a link, so we skipped it for safety."
NESTED_ARCHIVE = (
    "This is a zip inside the zip. We do not open archives inside archives: please upload it on its own."
)
ARCHIVE_TOO_MANY_FILES = (
    "This zip holds too many files for us to open safely (more than {limit:,}). "
    "Please upload the folder instead, or split it into smaller zips."
)
ARCHIVE_TOO_LARGE = (
    "This zip would unpack to more than {limit_gb:,} GB, more than we accept. "
    "Please upload the folder instead, or split it into smaller zips."
)
ARCHIVE_BOMB = (
    "This zip is packed in a way that would expand to far more data than it holds, "
    "which is how harmful zips are made. We did not open it."
)
ARCHIVE_ENTRY_BOMB = (
    "This entry of the zip expands to far more data than it holds, so we skipped it for safety."
)
ARCHIVE_DAMAGED = "This zip is damaged or incomplete, so we could not open it. Please make it again."

# Reports.
REPORT_HTML = (
    "This file is a web page saved with a .pdf name, not a real PDF. "
    "Please open it and use Print → Save as PDF, then upload that file."
)
REPORT_DAMAGED_PDF = "This PDF is damaged or protected and could not be opened. Please upload another copy."
REPORT_DAMAGED_IMAGE = "This photo could not be opened. Please take the photo again as JPEG or PNG."
REPORT_UNSUPPORTED = "Reports must be PDF files or photos (JPEG or PNG). This file is neither."
REPORT_TOO_LARGE = "This report file is larger than we accept ({limit_mb} MB)."
REPORT_EMPTY = "This report file is empty (0 bytes)."

# Whole uploads.
UPLOAD_FAILED = "Something went wrong while processing this file. Our team has been told."
# For staff (Upload.system_problem), never the patient, who reads that the files are still
# being checked: our storage failed, not their file.
STORAGE_FAILING = (
    "Our file storage failed while these files were being processed (a system problem, not the "
    "patient's files). Processing is retried automatically; nothing was lost."
)

# Report matching (Report.match_reason).
MATCH_ACCESSION = "The accession number in the report matches this study."
MATCH_DATE_MODALITY = "The date and type of scan in the report match this study."
MATCH_DATE_MODALITY_BODY = "The date, type of scan and body part in the report match this study."
UNMATCHED_NO_TEXT = "No text could be read from this report, so staff will link it to a study."
UNMATCHED_NO_STUDIES = "No images have been processed yet; we will try again when they are."
UNMATCHED_NO_DATE = "The report names no date we could read, so staff will link it to a study."
UNMATCHED_NO_MATCH = "No uploaded study has the date and type of scan named in the report."
UNMATCHED_AMBIGUOUS = "Several studies fit this report, so staff will choose the right one."
MATCH_CORRECTED = "Linked to this study by staff."
MATCH_CORRECTED_NONE = "Staff marked this report as not belonging to any uploaded study."
