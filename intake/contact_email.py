"""The patient's contact email, when it is not the account's own, is confirmed before case
emails go to it.

Someone filling in the wizard for a relative gives the patient's email; until whoever reads that
mailbox follows the link we sent there, updates about the case go to the account only. A typo or
a stranger's address therefore never receives news of someone's medical case.
"""

from __future__ import annotations

import hashlib

from django.conf import settings
from django.core import signing
from django.db import transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.text import format_lazy
from django.utils.translation import gettext_lazy, gettext_noop

from branding.emails import branded_email_send
from intake.models import Case
from tenants.schema import current_institution, current_schema_name
from tenants.selectors import institution_primary_url

_SALT = "intake.patient-email"
LINK_LIFETIME_SECONDS = 14 * 24 * 3600

LINK_INVALID = gettext_noop(
    "This confirmation link is not valid any more. Ask for a new one from the request's first step."
)
CONFIRMED = gettext_noop("Thank you: updates about this request will now also be sent to {email}.")


def patient_email_needs_confirming(*, case: Case) -> bool:
    return bool(case.patient_email) and case.patient_email.lower() != case.owner.email.lower()


def patient_email_confirmed(*, case: Case) -> bool:
    """Whether case emails may go to the patient's contact address."""
    return bool(case.patient_email) and (
        not patient_email_needs_confirming(case=case) or case.patient_email_confirmed_at is not None
    )


def case_email_recipients(*, case: Case) -> list[str]:
    """Who is emailed about ``case``: the account, and the patient's address once confirmed."""
    recipients = {case.owner.email}
    if patient_email_confirmed(case=case):
        recipients.add(case.patient_email)
    return sorted(recipients)


def _email_digest(email: str) -> str:
    # The token is signed, not encrypted: it carries a digest of the address, never the address.
    return hashlib.sha256(email.lower().encode()).hexdigest()[:24]


def _token(*, case: Case) -> str:
    data = {"schema": current_schema_name(), "case": case.pk, "email": _email_digest(case.patient_email)}
    return signing.dumps(data, salt=_SALT)


def patient_email_confirmation_send(*, case: Case) -> None:
    """Email the patient's address a link to confirm it (an outbox message, with the change)."""
    institution = current_institution()
    link = institution_primary_url(institution=institution).rstrip("/") + reverse(
        "intake:patient_email_confirm", args=[_token(case=case)], urlconf=settings.ROOT_URLCONF
    )
    branded_email_send(
        institution=institution,
        to=[case.patient_email],
        subject=format_lazy(gettext_lazy("Please confirm your email for {name}"), name=institution.name),
        template="intake/email/patient_email_confirm",
        context={"case": case, "link": link},
        dedupe_key=f"patient-email-confirm:{case.pk}:{case.patient_email.lower()}",
        language=case.owner.language,
    )


def patient_email_changed(*, case: Case, previous: str) -> None:
    """Called when step 1 is saved: a new address is unconfirmed and gets a link.
    Precondition: inside the transaction that saved ``case``."""
    if case.patient_email.lower() == previous.lower():
        return
    Case.objects.filter(pk=case.pk).update(patient_email_confirmed_at=None)
    case.patient_email_confirmed_at = None
    if patient_email_needs_confirming(case=case):
        patient_email_confirmation_send(case=case)


def case_for_email_token(*, token: str) -> Case | None:
    """The case a confirmation link is for, if the link is genuine, recent and still names the
    case's current patient email."""
    try:
        data = signing.loads(token, salt=_SALT, max_age=LINK_LIFETIME_SECONDS)
    except signing.BadSignature:
        return None
    if data.get("schema") != current_schema_name():  # another institution's link
        return None
    case = Case.objects.select_related("owner").filter(pk=data.get("case")).first()
    if case is None or not case.patient_email or _email_digest(case.patient_email) != data.get("email"):
        return None
    return case


def patient_email_confirm(*, case: Case) -> Case:
    with transaction.atomic():
        Case.objects.filter(pk=case.pk, patient_email_confirmed_at__isnull=True).update(
            patient_email_confirmed_at=timezone.now()
        )
    case.refresh_from_db()
    return case
