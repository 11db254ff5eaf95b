"""Branded emails to patients about their cases, written to the outbox with the change.

Each email links to the page it is about (the case's status page, or the opinion), on the
institution's own domain when it has a verified one (``branding.emails``), and goes to each
recipient separately, greeted by name (``intake.recipients``).
"""

from __future__ import annotations

import hashlib

from django.conf import settings
from django.urls import reverse
from django.utils import timezone
from django.utils.text import format_lazy
from django.utils.translation import gettext_lazy, gettext_noop

from branding.emails import branded_email_send
from intake.models import Case
from intake.recipients import CaseRecipient, case_recipients
from tenants.schema import current_institution

# The states a patient is told about, and the words we use for them.
PATIENT_NOTICES: dict[str, tuple[str, str]] = {
    Case.Status.SUBMITTED: (gettext_noop("Your case has been received"), "intake/email/case_submitted"),
    Case.Status.IN_REVIEW: (
        gettext_noop("A physician is reviewing your case"),
        "intake/email/case_in_review",
    ),
    Case.Status.INFO_REQUESTED: (
        gettext_noop("We need more information for your case"),
        "intake/email/case_info_requested",
    ),
    Case.Status.RELEASED: (gettext_noop("Your second opinion is ready"), "intake/email/case_released"),
    Case.Status.DECLINED: (gettext_noop("About your second-opinion request"), "intake/email/case_declined"),
    Case.Status.WITHDRAWN: (gettext_noop("Your request has been withdrawn"), "intake/email/case_withdrawn"),
}

# Only the account that filed the case can add what the care team asks for.
FILER_ONLY_NOTICES = frozenset({Case.Status.INFO_REQUESTED})


def case_link_paths(*, case: Case) -> dict[str, str]:
    """Paths (without the leading slash: templates join them to ``portal_url``) of the pages
    an email about ``case`` links to."""
    # The institution's URLconf, also when the email is written while serving the platform's
    # domain (a Stripe webhook moving a paid case on).
    return {
        "case_path": _path("intake:case_status", case),
        "opinion_path": _path("review:patient_opinion", case),
    }


def _path(name: str, case: Case) -> str:
    return reverse(name, args=[case.public_id], urlconf=settings.ROOT_URLCONF).lstrip("/")


def recipient_key(recipient: CaseRecipient) -> str:
    """A short, stable part of an outbox key per recipient (no address in the key)."""
    return hashlib.sha256(recipient.address.lower().encode()).hexdigest()[:16]


def case_status_email_send(*, case: Case, note: str = "") -> bool:
    """Email about the status ``case`` has just reached, once per move and recipient (the
    outbox key names the case, the status, the moment of the move and the recipient). Returns
    whether the status is one patients are told about. Precondition: called in the transaction
    of the move."""
    if case.status not in PATIENT_NOTICES:
        return False
    institution = current_institution()
    subject, template = PATIENT_NOTICES[case.status]
    moved_at = case.status_changed.isoformat() if case.status_changed else ""
    for recipient in case_recipients(case=case, filer_only=case.status in FILER_ONLY_NOTICES):
        branded_email_send(
            institution=institution,
            to=[recipient.address],
            subject=format_lazy("{} ({})", gettext_lazy(subject), case.number)
            if case.number
            else gettext_lazy(subject),
            template=template,
            context={"case": case, "note": note, "recipient": recipient, **case_link_paths(case=case)},
            dedupe_key=f"case-status:{case.pk}:{case.status}:{moved_at}:{recipient_key(recipient)}",
            language=recipient.language,
        )
    return True


CONTINUE_LINK_SUBJECT = gettext_lazy("Continue your request on a computer")


def case_continue_link_email_send(*, case: Case) -> None:
    """Email the account that filed the case a link to its images step, to open on a computer
    (a phone cannot read a CD). Only to that account's own address; the link carries no
    sign-in: they sign in on the computer as usual. Written to the outbox in the caller's
    transaction."""
    (recipient,) = case_recipients(case=case, filer_only=True)
    branded_email_send(
        institution=current_institution(),
        to=[recipient.address],
        subject=CONTINUE_LINK_SUBJECT,
        template="intake/email/continue_on_computer",
        context={
            "case": case,
            "recipient": recipient,
            "images_path": _path("intake:case_images", case),
        },
        dedupe_key=f"continue-link:{case.pk}:{timezone.now().isoformat()}",
        language=recipient.language,
    )
