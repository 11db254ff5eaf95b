"""What the tus endpoint tells a patient (or their tus client) when it refuses something.

Plain words, no internals and no patient data: these strings reach the browser and the tests
reuse them.
"""

from __future__ import annotations

from django.utils.translation import gettext_noop

SIGN_IN = gettext_noop("Please sign in again to continue uploading.")
UNSUPPORTED_VERSION = gettext_noop(
    "This upload program speaks a version of the tus protocol we do not support (we speak 1.0.0)."
)
MISSING_TUS_HEADER = gettext_noop(
    "This address only accepts uploads from a tus client (the Tus-Resumable header is missing)."
)

METADATA_INVALID = gettext_noop("The upload's description (Upload-Metadata) could not be read.")
CASE_MISSING = gettext_noop("The upload does not say which case it belongs to.")
CASE_NOT_FOUND = gettext_noop("We could not find this case among yours.")
CASE_LOCKED = gettext_noop("Files can no longer be added to this case: it has already been sent for review.")
KIND_INVALID = gettext_noop("The upload must be either imaging or a report.")
REPORT_KIND_INVALID = gettext_noop("The type of report is not one we know.")
FILENAME_INVALID = gettext_noop("The file name is too long or contains characters we cannot accept.")
PATH_INVALID = gettext_noop(
    "The folder path of this file is too long or contains characters we cannot accept."
)
BATCH_FILES_INVALID = gettext_noop(
    "The number of files in this batch (batchFiles) must be a whole number from 1 to 99,999."
)
SHA256_INVALID = gettext_noop("The file's checksum (sha256) must be 64 hexadecimal characters.")

LENGTH_MISSING = gettext_noop(
    "The upload must state its size (Upload-Length); uploads of unknown size are not supported."
)
LENGTH_INVALID = gettext_noop("The upload's size (Upload-Length) must be a whole number of bytes.")
FILE_TOO_LARGE = gettext_noop("This file is larger than the {limit} we accept for one file.")
CASE_QUOTA_EXCEEDED = gettext_noop(
    "This case already holds {used} of files; this file would take it past the {limit} a case may "
    "hold. Please leave out files that are not needed (for example, viewer programs from the disc)."
)
PATIENT_QUOTA_EXCEEDED = gettext_noop(
    "Your requests already hold {used} of files; this file would take them past the {limit} one "
    "person may upload. Please leave out files that are not needed, or delete a request you will not "
    "send."
)
CONSENT_FIRST = gettext_noop(
    "Please fill in the patient's details and agree to the terms before adding files."
)
TOO_MANY_FILES = gettext_noop("This case already holds the largest number of files we accept ({limit}).")

OFFSET_MISSING = gettext_noop("The chunk must say where it goes in the file (Upload-Offset).")
OFFSET_MISMATCH = gettext_noop(
    "This chunk does not continue the file where we stopped; ask where to resume (HEAD) and retry."
)
CONTENT_TYPE_INVALID = gettext_noop("Chunks must be sent as application/offset+octet-stream.")
CHUNK_TOO_LONG = gettext_noop("This chunk goes past the end of the file's declared size.")
CHECKSUM_INVALID = gettext_noop("The chunk's checksum (Upload-Checksum) could not be read.")
CHECKSUM_ALGORITHM_UNSUPPORTED = gettext_noop(
    "The chunk's checksum uses an algorithm we do not support (sha1, md5, sha256)."
)
CHECKSUM_MISMATCH = gettext_noop(
    "This chunk arrived damaged (its checksum does not match) and was not kept; please send it again."
)
CHUNK_INCOMPLETE = gettext_noop(
    "The connection dropped before the chunk was complete; it was not kept because its checksum could"
    " not be verified."
)
UPLOAD_BUSY = gettext_noop(
    "This same file is being received by another request right now (a second tab, or a retry while "
    "the first attempt is still sending). Ask where to resume (HEAD) and continue from there."
)
UPLOAD_COMPLETE = gettext_noop("This file has already been received in full.")
UPLOAD_EXPIRED = gettext_noop(
    "This upload was not finished in time and has expired; please upload the file again."
)
UPLOAD_FAILED = gettext_noop("This upload failed; please upload the file again.")
UPLOAD_NOT_FOUND = gettext_noop("We could not find this upload among yours.")
UPLOAD_NOT_TERMINABLE = gettext_noop(
    "This file has already been received and added to your case, so it cannot be removed here. If it "
    "was added by mistake, please say so in your question for the reviewers."
)
CHUNKED_INVALID = gettext_noop(
    "The chunk was sent in a broken format (chunked transfer encoding) and was not kept; please send "
    "it again."
)
WHOLE_FILE_MISMATCH = gettext_noop(
    "The file we received does not match the original on your computer (its checksum differs), so it "
    "was not kept. Please upload it again."
)
STORAGE_UNAVAILABLE = gettext_noop(
    "We could not store this part of your file just now because of a problem on our side. Everything "
    "you sent before is safe: your upload will continue from where it stopped. If it does not, please"
    " try again in a few minutes."
)
