"""Branded emails to patients about their cases, written to the outbox with the change."""

from __future__ import annotations

from branding.emails import branded_email_send
from intake.contact_email import case_email_recipients
from intake.models import Case
from tenants.schema import current_institution

# The states a patient is told about, and the words we use for them.
PATIENT_NOTICES: dict[str, tuple[str, str]] = {
    Case.Status.SUBMITTED: ("Your case has been received", "intake/email/case_submitted"),
    Case.Status.IN_REVIEW: ("A physician is reviewing your case", "intake/email/case_in_review"),
    Case.Status.INFO_REQUESTED: (
        "We need more information for your case",
        "intake/email/case_info_requested",
    ),
    Case.Status.RELEASED: ("Your second opinion is ready", "intake/email/case_released"),
    Case.Status.DECLINED: ("About your second-opinion request", "intake/email/case_declined"),
}


def case_status_email_send(*, case: Case, note: str = "") -> bool:
    """Email the patient about the status ``case`` has just reached, once per move (the outbox
    key names the case, the status and the moment of the move). Returns whether the status is
    one patients are told about. Precondition: called in the transaction of the move."""
    if case.status not in PATIENT_NOTICES:
        return False
    institution = current_institution()
    subject, template = PATIENT_NOTICES[case.status]
    recipients = case_email_recipients(case=case)
    moved_at = case.status_changed.isoformat() if case.status_changed else ""
    branded_email_send(
        institution=institution,
        to=recipients,
        subject=f"{subject} ({case.number})" if case.number else subject,
        template=template,
        context={"case": case, "note": note},
        dedupe_key=f"case-status:{case.pk}:{case.status}:{moved_at}",
    )
    return True
