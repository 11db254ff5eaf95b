"""Addenda: what a reviewer adds to a signed opinion, which itself stays as it was signed.

An addendum is written and signed in one step, with the password or an authenticator code
asked again (as for the opinion). It gets a new PDF (the opinion followed by every addendum up
to it), written once the signature commits; every earlier PDF stays retrievable as a version.
If the opinion was already released, the patient is emailed and the report sent again to the
institution's FHIR server, if it has one (both through the outbox, in the same transaction);
otherwise they read it with the opinion when it is released.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import logging
import uuid
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.text import format_lazy
from django.utils.translation import gettext, gettext_lazy

from accounts.models import User
from branding.emails import branded_email_send
from intake.models import Case
from intake.notifications import recipient_key
from intake.recipients import case_recipients
from review.fhir_push import fhir_push_enqueue
from review.models import Opinion, OpinionAddendum, ReviewerProfile
from review.services import PROOF_NEEDED_MESSAGE, WRONG_SECRET_MESSAGE, ReviewError, secret_ok
from storage.tenant import tenant_storage
from tenants.models import Institution
from tenants.schema import current_institution

logger = logging.getLogger(__name__)

ADDENDUM_NOT_SIGNED_MESSAGE = "An addendum can be added once the opinion is signed."
ADDENDUM_EMPTY_MESSAGE = "Write the addendum first."
ADDENDUM_WRONG_SECRET_MESSAGE = WRONG_SECRET_MESSAGE.replace("the opinion", "the addendum")
ADDENDUM_PROOF_NEEDED_MESSAGE = PROOF_NEEDED_MESSAGE.replace("The opinion", "The addendum")
ADDENDUM_EMAIL_SUBJECT = gettext_lazy("An addendum to your second opinion")


@dataclass(frozen=True)
class PdfVersion:
    number: int  # 1: the opinion as first signed; n + 1: with addendum n
    label: str
    signed_at: dt.datetime | None
    key: str


def opinion_addenda(opinion: Opinion) -> list[OpinionAddendum]:
    return list(OpinionAddendum.objects.filter(opinion=opinion))


def opinion_pdf_versions(opinion: Opinion, addenda: list[OpinionAddendum] | None = None) -> list[PdfVersion]:
    """Every PDF the signed opinion has had, oldest first; the last is the current one."""
    addenda = opinion_addenda(opinion) if addenda is None else addenda
    versions = [PdfVersion(1, gettext("Original opinion"), opinion.signed_at, opinion.pdf_key)]
    for n, addendum in enumerate(addenda, start=1):
        label = gettext("With addendum %(number)s") % {"number": n}
        versions.append(PdfVersion(n + 1, label, addendum.signed_at, addendum.pdf_key))
    return versions


def opinion_pdf_version_ensure(
    *, opinion: Opinion, institution: Institution, version: int | None = None
) -> str:
    """The storage key of PDF ``version`` (default: the current one), writing it again if its
    write after signing failed: the opinion and its addenda are frozen, so the text is the one
    signed. Raises ``LookupError`` for a version that does not exist.

    Precondition: ``opinion`` is signed."""
    addenda = opinion_addenda(opinion)
    versions = opinion_pdf_versions(opinion, addenda)
    number = len(versions) if version is None else version
    if not 1 <= number <= len(versions):
        raise LookupError(number)
    key = versions[number - 1].key
    storage = tenant_storage()
    if not storage.exists(key):
        from review.pdf import opinion_pdf_render

        logger.warning("opinion pdf missing, rendering it again", extra={"opinion_id": opinion.pk})
        pdf = opinion_pdf_render(
            opinion=opinion, case=opinion.case, institution=institution, addenda=addenda[: number - 1]
        )
        storage.save(key, io.BytesIO(pdf), len(pdf))
    return key


def addendum_digest(*, opinion: Opinion, text: str, signed_at: str) -> str:
    content = {"opinion": opinion.content_sha256, "text": text, "signed_at": signed_at}
    return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()


@transaction.atomic
def opinion_addendum_sign(
    *,
    case: Case,
    signer: User,
    secret: str,
    text: str,
    institution: Institution,
    recently_authenticated: bool = False,
) -> OpinionAddendum:
    """Add a signed addendum to the case's signed opinion (see the module's docstring).

    ``recently_authenticated``: as for ``review.services.opinion_sign``, the session proved the
    signer's credentials minutes ago, which stands for the proof when no ``secret`` is sent.

    Precondition: ``signer`` is the case's reviewer (the view's access helper). Refusals
    (unsigned opinion, no text, wrong secret) store nothing."""
    opinion = Opinion.objects.select_for_update().filter(case=case).first()
    if opinion is None or not opinion.is_signed:
        raise ReviewError(ADDENDUM_NOT_SIGNED_MESSAGE)
    if not text.strip():
        raise ReviewError(ADDENDUM_EMPTY_MESSAGE)
    if (secret or not recently_authenticated) and not secret_ok(signer, secret):
        raise ReviewError(ADDENDUM_WRONG_SECRET_MESSAGE if secret else ADDENDUM_PROOF_NEEDED_MESSAGE)
    profile = ReviewerProfile.objects.filter(user=signer).first()
    now = timezone.now()
    addendum = OpinionAddendum(
        opinion=opinion,
        text=text.strip(),
        signed_at=now,
        signed_by=signer,
        signer_name=signer.full_name or signer.email,
        signer_credentials=profile.credentials if profile else "",
        signer_title=profile.title if profile else "",
        content_sha256=addendum_digest(opinion=opinion, text=text.strip(), signed_at=now.isoformat()),
        pdf_key=f"opinions/{uuid.uuid4().hex}.pdf",
    )
    from review.pdf import opinion_pdf_render

    pdf = opinion_pdf_render(
        opinion=opinion, case=case, institution=institution, addenda=[*opinion_addenda(opinion), addendum]
    )
    addendum.save()
    if opinion.released_at is not None:
        _addendum_email(case=case, addendum=addendum)
        fhir_push_enqueue(opinion=opinion, revision=f"addendum-{addendum.pk}")
    storage = tenant_storage()  # bound to this schema now, not to whichever runs the callback
    key = addendum.pdf_key
    transaction.on_commit(lambda: storage.save(key, io.BytesIO(pdf), len(pdf)), robust=True)
    return addendum


def _addendum_email(*, case: Case, addendum: OpinionAddendum) -> None:
    """To the outbox, in the caller's transaction: the patient reads the addendum signed in (the
    email holds none of it)."""
    institution = current_institution()
    subject = (
        format_lazy("{} ({})", ADDENDUM_EMAIL_SUBJECT, case.number) if case.number else ADDENDUM_EMAIL_SUBJECT
    )
    for recipient in case_recipients(case=case):
        branded_email_send(
            institution=institution,
            to=[recipient.address],
            subject=subject,
            template="review/email/opinion_addendum",
            context={
                "case": case,
                "recipient": recipient,
                "opinion_path": reverse(
                    "review:patient_opinion", args=[case.public_id], urlconf=settings.ROOT_URLCONF
                ).lstrip("/"),
            },
            dedupe_key=f"opinion-addendum:{addendum.public_id}:{recipient_key(recipient)}",
            language=recipient.language,
        )
