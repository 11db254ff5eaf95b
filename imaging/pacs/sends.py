"""Staff send a case's studies to a PACS destination; a worker delivers each study.

A request writes one :class:`PacsSend` per study (status QUEUED) and queues its delivery in the
same transaction, through the outbox (outbox.services.enqueue); nothing leaves the building
inside it. Delivery (:func:`pacs_send_deliver`)
claims the send with a conditional UPDATE (so two deliveries of the same message never send
twice at once), copies the study's instances from storage to a temporary folder (de-identified
when asked, with the UID map kept on the row so a retry sends the same UIDs), sends them, and
records the outcome. A failure that may pass (the PACS is down) raises :class:`SendRetry` for
the outbox to try again later, up to :data:`MAX_ATTEMPTS`; one that cannot (the PACS refuses
this kind of image, or our credentials) ends FAILED at once. A send that ends FAILED leaves its
outbox message failed too (``Undeliverable``), so admins find it in the list of failed
deliveries; their retry there re-arms the send (:func:`pacs_send_outbox_retry`). Every request
and every outcome is in the audit log.
"""

from __future__ import annotations

import io
import logging
import secrets
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

from django.db import transaction
from django.db.models import F, Q
from django.http import HttpRequest
from django.utils import timezone
from pydicom import dcmread

from accounts.models import User
from audit.services import audit_append, audit_record
from imaging.deid.profile import DeidOptions, UidMap, burned_in_risk, dataset_deidentify
from imaging.instance_files import instance_file_open, instance_file_read
from imaging.models import Instance, PacsDestination, PacsSend, Study
from imaging.pacs.destinations import destination_endpoint, destination_node
from imaging.pacs.dimse import PacsError, c_store_files
from imaging.pacs.stow import stow_files
from outbox.deliverers import Undeliverable
from outbox.services import enqueue
from storage.tenant import tenant_storage

logger = logging.getLogger(__name__)

OUTBOX_KIND = "pacs.send"
# Attempts before a send is given up (the outbox waits 30 s, 1, 2, 4 minutes... between them).
MAX_ATTEMPTS = 5
# A send held this long by a worker that died may be claimed again.
CLAIM_STALE_AFTER = timedelta(minutes=30)

NO_STUDIES = "This case has no images to send."
DESTINATION_GONE = "Choose one of the institution's PACS destinations."
NOTHING_LEFT_DEIDENTIFIED = (
    "Every image of this study may show the patient's name in its pixels: none was sent."
)
UNEXPECTED = "Sending failed for a reason of ours; it will be tried again."


class SendRetry(Exception):
    """Delivery failed for a reason that may pass; the outbox tries again later."""


def pacs_send_request(
    *, request: HttpRequest, case: Any, destination: PacsDestination, deidentified: bool
) -> list[PacsSend]:
    """Queue a send of each of ``case``'s studies. Precondition: the caller checked the user is
    staff who may see the case, and ``destination`` is this institution's and not removed."""
    assert isinstance(request.user, User)
    studies = list(Study.objects.filter(case=case).order_by("id"))
    if not studies:
        raise ValueError(NO_STUDIES)
    pseudonym = f"SR-DEID-{secrets.token_hex(4).upper()}" if deidentified else ""
    with transaction.atomic():
        sends = [
            PacsSend.objects.create(
                case=case,
                study=study,
                destination=destination,
                deidentified=deidentified,
                deid_pseudonym=pseudonym,
                instances_total=study.instance_count,
                requested_by=request.user,
            )
            for study in studies
        ]
        audit_record(
            request=request,
            action="pacs.send_request",
            case=case,
            object_ref=str(destination.public_id),
            detail={
                "destination": destination.name,
                "studies": len(sends),
                "deidentified": deidentified,
                "sends": [str(send.public_id) for send in sends],
            },
        )
        for send in sends:
            pacs_send_enqueue(send=send)
    return sends


def pacs_send_enqueue(*, send: PacsSend) -> None:
    """Write the delivery of ``send`` to the outbox, with the caller's change (delivered once it
    commits, retried by the outbox while :func:`pacs_send_outbox_deliver` raises)."""
    enqueue(
        kind=OUTBOX_KIND,
        key=f"pacs-send:{send.public_id}",
        payload={"send_id": send.pk},
        summary=f"Send a study to the PACS destination {send.destination.name}"[:200],
    )


def pacs_send_outbox_deliver(payload: dict[str, Any]) -> None:
    """The outbox's deliverer for PACS sends: returns when the send is sent (or held by another
    worker); raises SendRetry for the outbox to try again later, and Undeliverable when the send
    ended FAILED (also when a worker that died had already recorded that)."""
    send_id = int(payload["send_id"])
    send = pacs_send_deliver(send_id=send_id)
    if send is None:
        send = PacsSend.objects.filter(pk=send_id).first()
    if send is not None and send.status == PacsSend.Status.FAILED:
        raise Undeliverable(f"PACS: {send.error_message}" if send.error_message else "PACS send failed")


def pacs_send_outbox_retry(payload: dict[str, Any]) -> None:
    """An admin retried the send's outbox message: the send (failed, or retrying and failing)
    waits to be sent again with a fresh count of attempts."""
    PacsSend.objects.filter(
        pk=int(payload["send_id"]), status__in=[PacsSend.Status.FAILED, PacsSend.Status.RETRYING]
    ).update(status=PacsSend.Status.QUEUED, attempts=0, error_message="", finished_at=None)


def _claim(send_id: int) -> PacsSend | None:
    """Take the send for this worker (QUEUED or RETRYING, or SENDING by a worker long dead)."""
    now = timezone.now()
    claimed = PacsSend.objects.filter(
        Q(status__in=[PacsSend.Status.QUEUED, PacsSend.Status.RETRYING])
        | Q(status=PacsSend.Status.SENDING, claimed_at__lt=now - CLAIM_STALE_AFTER),
        pk=send_id,
    ).update(status=PacsSend.Status.SENDING, claimed_at=now, attempts=F("attempts") + 1)
    if not claimed:
        return None
    return PacsSend.objects.select_related("destination", "study", "case", "requested_by").get(pk=send_id)


def pacs_send_deliver(*, send_id: int) -> PacsSend | None:
    """Deliver one send (see the module docstring); None if there was nothing ours to do.
    Raises SendRetry when the caller should try again. Never called inside a transaction."""
    send = _claim(send_id)
    if send is None:
        return None
    try:
        sent, left_out = _deliver(send)
    except PacsError as error:
        return _failed(send, str(error), retry=error.retry)
    except Exception as error:  # ours, not the PACS's: retried while attempts remain
        logger.warning(
            "pacs send failed on our side",
            extra={"event": "pacs.send_error", "object_id": send.pk, "status": type(error).__name__},
        )
        return _failed(send, UNEXPECTED, retry=True)
    PacsSend.objects.filter(pk=send.pk).update(
        status=PacsSend.Status.SENT,
        instances_sent=sent,
        error_message=NOTHING_LEFT_DEIDENTIFIED if send.deidentified and not sent and left_out else "",
        finished_at=timezone.now(),
        claimed_at=None,
    )
    _audit(send, "pacs.send_delivered", allowed=True, detail={"images": sent, "left_out_burned_in": left_out})
    send.refresh_from_db()
    return send


def _failed(send: PacsSend, message: str, *, retry: bool) -> PacsSend:
    again = retry and send.attempts < MAX_ATTEMPTS
    PacsSend.objects.filter(pk=send.pk).update(
        status=PacsSend.Status.RETRYING if again else PacsSend.Status.FAILED,
        error_message=message[:300],
        claimed_at=None,
        finished_at=None if again else timezone.now(),
    )
    _audit(
        send,
        "pacs.send_attempt_failed" if again else "pacs.send_failed",
        allowed=True,
        detail={"attempt": send.attempts, "reason": message[:300]},
    )
    if again:
        raise SendRetry(message)
    send.refresh_from_db()
    return send


def _audit(send: PacsSend, action: str, *, allowed: bool, detail: dict[str, Any]) -> None:
    audit_append(
        actor=send.requested_by,
        actor_email=send.requested_by.email,
        action=action,
        case=send.case,
        object_ref=str(send.public_id),
        ip_address=None,
        allowed=allowed,
        detail={"destination": send.destination.name, "deidentified": send.deidentified, **detail},
    )


def _deliver(send: PacsSend) -> tuple[int, int]:
    with _study_files(send) as (paths, left_out):
        if not paths:
            return 0, left_out
        destination = send.destination
        if destination.kind == PacsDestination.Kind.DIMSE:
            return c_store_files(destination_node(destination), paths), left_out
        return stow_files(destination_endpoint(destination), paths), left_out


@contextmanager
def _study_files(send: PacsSend) -> Iterator[tuple[list[Path], int]]:
    """The study's instances as files in a temporary folder (removed afterwards), and how many
    were left out (de-identified sends leave out images whose pixels may show a name)."""
    storage = tenant_storage()
    uids = UidMap(mapping=dict(send.deid_uids))
    options = DeidOptions()
    left_out = 0
    instances = Instance.objects.filter(series__study=send.study).order_by(
        "series__series_number", "series_id", "instance_number", "id"
    )
    with tempfile.TemporaryDirectory(prefix="secondread-pacs-") as folder:
        paths: list[Path] = []
        for number, instance in enumerate(instances.iterator(chunk_size=200), start=1):
            path = Path(folder) / f"{number:06d}.dcm"
            if not send.deidentified:
                with instance_file_open(instance, storage) as stream, path.open("wb") as out:
                    while chunk := stream.read(1024 * 1024):
                        out.write(chunk)
            else:
                ds = dcmread(io.BytesIO(instance_file_read(instance, storage)))
                if burned_in_risk(ds):
                    left_out += 1
                    continue
                dataset_deidentify(ds, uids=uids, options=options, pseudonym=send.deid_pseudonym)
                ds.save_as(path, enforce_file_format=True)
            paths.append(path)
        if send.deidentified and uids.mapping != send.deid_uids:
            PacsSend.objects.filter(pk=send.pk).update(deid_uids=uids.mapping)
        yield paths, left_out


def pacs_sends_of_case(case: Any) -> list[PacsSend]:
    """The case's sends, newest first, for its page."""
    return list(PacsSend.objects.filter(case=case).select_related("destination", "study", "requested_by"))
