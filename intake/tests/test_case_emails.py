"""What the patient's emails say and where they link (issue 14, item 6): plain text is not
HTML-escaped, buttons link to the case or the opinion, the person who filed the case is the
one greeted and asked for information, a verified own domain is used, logos keep their shape."""

from __future__ import annotations

import io
import re
from typing import Any

from django.core import mail
from django.utils import timezone
from django_tenants.utils import tenant_context
from PIL import Image

from accounts.models import User
from branding.models import Brand
from branding.services import brand_logo_set
from intake.models import Case
from intake.status import case_number_assign
from intake.workflow import case_status_change
from tenants.models import CustomDomain, Institution

# A status each move starts from (intake.workflow's table).
BEFORE: dict[str, str] = {
    Case.Status.SUBMITTED: Case.Status.DRAFT,
    Case.Status.INFO_REQUESTED: Case.Status.SUBMITTED,
    Case.Status.RELEASED: Case.Status.OPINION_DRAFTED,
}


def _family_case(institution: Institution, status: str) -> Case:
    """A case filed by a daughter for her father, who has his own email address."""
    owner = User.objects.create_user(
        email=f"daughter-{status}@family.example.com", password="x" * 20, full_name="Maria Alvarez"
    )
    case = Case.objects.create(
        owner=owner,
        status=BEFORE[status],
        submitter_relation=Case.Relation.FAMILY,
        submitter_name="Maria Alvarez",
        patient_name="Robert Alvarez",
        patient_email="robert@family.example.com",
        patient_email_confirmed_at=timezone.now(),  # intake.contact_email: he confirmed it
    )
    case_number_assign(case=case, prefix="NNI")
    case_status_change(case=case, status=status)  # emails, as every move does
    return case


def _patient_emails() -> list[Any]:
    """The emails to the patient's side (staff are told about new cases too)."""
    return [m for m in mail.outbox if not m.to[0].endswith("@neuro.example.com") or "patient@" in m.to[0]]


def _html(email: Any) -> str:
    return str(email.alternatives[0][0])


def _text_link(body: Any, label: str) -> str:
    match = re.search(rf"{label}: (\S+)", str(body))
    assert match, body
    return match.group(1)


def test_it_does_not_escape_the_plain_text(neuro: Institution) -> None:
    neuro.name = "Harborview Spine & Brain Institute"
    neuro.save(update_fields=["name"])
    with tenant_context(neuro):
        _family_case(neuro, Case.Status.SUBMITTED)
    for email in _patient_emails():
        assert "Harborview Spine & Brain Institute has received" in email.body
        assert "&amp;" not in email.body
        assert "&amp;" in _html(email)  # the HTML part is escaped, as it must be


def test_it_links_follow_your_case_to_the_case_page(neuro: Institution) -> None:
    with tenant_context(neuro):
        case = _family_case(neuro, Case.Status.SUBMITTED)
    email = _patient_emails()[0]
    assert _text_link(email.body, "Follow your case").endswith(f"/cases/{case.public_id}/")
    assert f'/cases/{case.public_id}/"' in _html(email)


def test_it_links_read_your_opinion_to_the_opinion(neuro: Institution) -> None:
    with tenant_context(neuro):
        case = _family_case(neuro, Case.Status.RELEASED)
    link = _text_link(_patient_emails()[0].body, "Read your opinion")
    assert link.endswith(f"/opinions/{case.public_id}/")


def test_it_asks_the_filer_for_information_greeting_them(neuro: Institution) -> None:
    with tenant_context(neuro):
        case = Case.objects.get(pk=_family_case(neuro, Case.Status.SUBMITTED).pk)
        mail.outbox.clear()
        case_status_change(case=case, status=Case.Status.INFO_REQUESTED, note="The 2023 MRI, please.")
    (email,) = _patient_emails()  # only the account that can add it
    assert email.to == [case.owner.email]
    assert email.body.startswith("Hello Maria Alvarez,")
    assert "request you filed for Robert Alvarez" in email.body
    assert "The 2023 MRI, please." in email.body


def test_it_greets_each_recipient_by_their_own_name(neuro: Institution) -> None:
    with tenant_context(neuro):
        case = _family_case(neuro, Case.Status.SUBMITTED)
    greetings = {email.to[0]: email.body.splitlines()[0] for email in _patient_emails()}
    assert greetings == {
        case.owner.email: "Hello Maria Alvarez,",
        "robert@family.example.com": "Hello Robert Alvarez,",
    }


def test_it_links_to_the_verified_own_domain(neuro: Institution) -> None:
    CustomDomain.objects.create(institution=neuro, domain="unclaimed.hospital.test")
    CustomDomain.objects.create(
        institution=neuro, domain="secondopinion.northfield.test", verified=timezone.now()
    )
    with tenant_context(neuro):
        _family_case(neuro, Case.Status.SUBMITTED)
    link = _text_link(_patient_emails()[0].body, "Follow your case")
    assert link.startswith("http://secondopinion.northfield.test")
    assert "secondopinion.northfield.test" in _html(_patient_emails()[0])


def _png(width: int, height: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (20, 60, 120)).save(out, format="PNG")
    return out.getvalue()


def test_it_keeps_the_logos_aspect_ratio(neuro: Institution) -> None:
    brand = Brand.objects.get(institution=neuro)
    brand_logo_set(brand=brand, data=_png(400, 100))  # a wide logo, 4:1
    with tenant_context(neuro):
        _family_case(neuro, Case.Status.SUBMITTED)
    html = _html(_patient_emails()[0])
    assert 'width="160" height="40"' in html
