"""DICOM (DIMSE) as a client: C-ECHO to test a destination, C-STORE to send instances.

Instances are sent from files as they are stored (pynetdicom reads the file's transfer syntax
and sends its encoded dataset), so the PACS receives the bytes the patient uploaded, not a
re-encoding. Errors come back as :class:`PacsError` with a message staff can act on.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from pydicom.filereader import read_file_meta_info
from pynetdicom import AE
from pynetdicom.association import Association
from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]

DEFAULT_CALLING_AE = "SECONDREAD"
NETWORK_TIMEOUT = 30

NOT_REACHED = "The PACS could not be reached (check the host and port, and that it accepts us)."
REJECTED = "The PACS refused the association (check both AE titles: it may not know ours)."
ECHO_FAILED = "The PACS accepted the connection but did not answer the echo."
NOT_ACCEPTED = "The PACS does not accept this kind of image in its stored form ({kind})."
STORE_REFUSED = "The PACS refused an image (status 0x{status:04X})."
STORE_NO_ANSWER = "The PACS stopped answering while images were being sent."


class PacsError(Exception):
    """A send or echo failed; ``str()`` is safe to show staff (no patient data)."""

    def __init__(self, message: str, *, retry: bool = True) -> None:
        super().__init__(message)
        # False when trying again cannot help (the PACS refuses this kind of image).
        self.retry = retry


@dataclass(frozen=True)
class DimseNode:
    host: str
    port: int
    called_ae: str
    calling_ae: str = DEFAULT_CALLING_AE
    use_tls: bool = False


def _associate(node: DimseNode, contexts: Iterable[tuple[str, str]]) -> Association:
    ae = AE(ae_title=node.calling_ae or DEFAULT_CALLING_AE)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = NETWORK_TIMEOUT
    contexts = list(contexts)
    for sop_class, transfer_syntax in contexts:
        ae.add_requested_context(sop_class, transfer_syntax)
    tls_args = None
    if node.use_tls:
        tls_args = (ssl.create_default_context(), node.host)
    assoc = ae.associate(node.host, node.port, ae_title=node.called_ae, tls_args=tls_args)
    if assoc.is_established:
        return assoc
    if assoc.is_rejected:
        raise PacsError(REJECTED)
    if assoc.rejected_contexts and not assoc.accepted_contexts:
        # Accepted the association but none of what we proposed: it would refuse it again.
        # (A refused context's answer names no transfer syntax: take the one we proposed.)
        refused = {cx.abstract_syntax for cx in assoc.rejected_contexts}
        syntax = next((ts for sop, ts in contexts if sop in refused), contexts[0][1])
        raise PacsError(NOT_ACCEPTED.format(kind=_syntax_name(syntax)), retry=False)
    raise PacsError(NOT_REACHED)


def c_echo(node: DimseNode) -> None:
    """Verify the node answers (the settings page's test button). Raises PacsError."""
    assoc = _associate(node, [(Verification, "1.2.840.10008.1.2")])
    try:
        status = assoc.send_c_echo()
        if not status or status.Status != 0:
            raise PacsError(ECHO_FAILED)
    finally:
        assoc.release()


def c_store_files(node: DimseNode, paths: list[Path]) -> int:
    """Send DICOM files (Part 10) in one association; returns how many were stored.

    Each file's SOP class and transfer syntax is proposed as it is: no transcoding, so a PACS
    that does not accept a compressed syntax refuses it in words (not retried: it would refuse
    again). Warning statuses (0xB000-0xBFFF: coerced or discarded elements) count as stored.
    """
    contexts: list[tuple[str, str]] = []
    for path in paths:
        meta = read_file_meta_info(path)
        pair = (str(meta.MediaStorageSOPClassUID), str(meta.TransferSyntaxUID))
        if pair not in contexts:
            contexts.append(pair)
    if len(contexts) > 128:  # the most an association may propose
        contexts = contexts[:128]
    assoc = _associate(node, contexts)
    stored = 0
    try:
        accepted = {(cx.abstract_syntax, cx.transfer_syntax[0]) for cx in assoc.accepted_contexts}
        for path in paths:
            meta = read_file_meta_info(path)
            pair = (str(meta.MediaStorageSOPClassUID), str(meta.TransferSyntaxUID))
            if pair not in accepted:
                raise PacsError(NOT_ACCEPTED.format(kind=_syntax_name(pair[1])), retry=False)
            status = assoc.send_c_store(path)
            if not status:
                raise PacsError(STORE_NO_ANSWER)
            code = int(status.Status)
            if code != 0 and not 0xB000 <= code <= 0xBFFF:
                raise PacsError(STORE_REFUSED.format(status=code), retry=code >= 0xA700 and code < 0xA800)
            stored += 1
    finally:
        if assoc.is_established:
            assoc.release()
    return stored


def _syntax_name(uid: str) -> str:
    from pydicom.uid import UID

    return UID(uid).name or uid
