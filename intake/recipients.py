"""Who is written to about a case, and how each is greeted.

The account that filed the case (the patient, or a relative, carer or physician acting for
them) is the one that can sign in and act, so it gets every email, greeted by its own name.
The patient's own address, when the filer gave one, it is another address and whoever reads
it has confirmed it (``intake.contact_email``), gets the news too, greeted by the patient's
name. Emails that ask for something only the filer can do (more information for the care team)
go to the filer alone.
"""

from __future__ import annotations

from dataclasses import dataclass

from intake.contact_email import patient_email_confirmed
from intake.models import Case


@dataclass(frozen=True)
class CaseRecipient:
    address: str
    greeting_name: str
    # True when the recipient acts for the patient (a relative, carer or physician): the email
    # then names the patient whose case it is about.
    acting_for_patient: bool
    # The language the emails are written in: the filer's (accounts.User.language), also for the
    # patient's own address (the filer chose the language the request is made in).
    language: str = ""


def case_recipients(*, case: Case, filer_only: bool = False) -> list[CaseRecipient]:
    """Precondition: ``case.owner`` is loaded (select_related) or loadable."""
    owner = case.owner
    is_self = case.submitter_relation == Case.Relation.SELF
    filer_name = case.patient_name if is_self else (case.submitter_name or owner.full_name)
    recipients = [
        CaseRecipient(
            address=owner.email,
            greeting_name=filer_name or owner.full_name,
            acting_for_patient=not is_self,
            language=owner.language,
        )
    ]
    patient_address = (case.patient_email or "").strip()
    if (
        not filer_only
        and patient_address
        and patient_address.lower() != owner.email.lower()
        and patient_email_confirmed(case=case)
    ):
        recipients.append(
            CaseRecipient(
                address=patient_address,
                greeting_name=case.patient_name,
                acting_for_patient=False,
                language=owner.language,
            )
        )
    return recipients
