"""The patient emails their doctor a shared opinion's link and, in a separate email, its code
(issue 14, item 7): through the outbox, never the code in the link's email, rate limited,
audited; only the case's patient can, and only for a live share's own link and code."""

# The sharing tests' fixtures (a released case, the signed-in patient) are imported, so pytest
# finds them here; ruff reads the tests' arguments of the same names as redefinitions.
# ruff: noqa: F811

from __future__ import annotations

import re

from django.core import mail
from django.core.cache import cache
from django.test import Client, override_settings
from django_tenants.utils import schema_context

from audit.models import AuditEvent
from config.settings.base import SR_RATE_LIMITS
from intake.models import Case
from review.models import OpinionShare
from review.share_emails import ADDRESS_INVALID, SHARE_NOT_FOUND
from review.tests.test_opinion import OPINION
from review.tests.test_opinion_sharing import _doctor, _share, assigned_case, patient, released  # noqa: F401
from tenants.models import Institution
from tests.outbox import outbox_deliver_all, outbox_summaries
from tests.staff import staff_force_login

DOCTOR = "dr.local@clinic.example.com"


def _share_fields(patient: Client, case: Case) -> dict[str, str]:
    link, code = _share(patient, case)
    with schema_context("neuro"):
        share = OpinionShare.objects.get(case=case)
    return {"share": str(share.public_id), "token": link.split("/")[2], "code": code, "address": DOCTOR}


def _email(patient: Client, case: Case, fields: dict[str, str], part: str) -> str:
    page = patient.post(f"/opinions/{case.public_id}/share/email", {**fields, "part": part})
    assert page["Cache-Control"] == "no-store"
    return page.content.decode()


def _to_doctor() -> list[mail.EmailMessage]:
    return [message for message in mail.outbox if message.to == [DOCTOR]]


def test_it_emails_the_link_and_the_code_separately(
    neuro: Institution, released: Case, patient: Client
) -> None:
    fields = _share_fields(patient, released)
    page = _email(patient, released, fields, "link")
    assert f"The link has been emailed to {DOCTOR}." in page
    assert fields["code"] in page  # the page still shows the code, to send next

    (link_email,) = _to_doctor()
    link = re.search(r"(http://neuro\.localhost/shared/\S+/)", str(link_email.body))
    assert link and fields["token"] in link.group(1)
    assert fields["code"] not in link_email.body and fields["code"] not in str(link_email.alternatives[0][0])  # type: ignore[attr-defined]
    assert "gives you separately" in link_email.body

    page = _email(patient, released, fields, "code")
    assert f"The code has been emailed to {DOCTOR}." in page
    code_email = _to_doctor()[1]
    assert fields["code"] in code_email.body
    html = str(code_email.alternatives[0][0])  # type: ignore[attr-defined]
    assert fields["token"] not in code_email.body + html and "/shared/" not in code_email.body + html

    # The doctor opens the opinion with what the two emails hold.
    doctor = _doctor()
    opened = doctor.post(link.group(1).replace("http://neuro.localhost", ""), {"code": fields["code"]})
    assert OPINION["findings"] in doctor.get(opened["Location"]).content.decode()

    with schema_context(neuro.schema_name):
        actions = list(
            AuditEvent.objects.filter(action__startswith="share.email")
            .order_by("pk")
            .values_list("action", "allowed", "object_ref")
        )
    ref = f"share:{fields['share']}"
    assert actions == [("share.email_link", True, ref), ("share.email_code", True, ref)]


def test_it_writes_each_part_once_to_the_outbox(
    neuro: Institution, released: Case, patient: Client, outbox_email: None
) -> None:
    fields = _share_fields(patient, released)
    _email(patient, released, fields, "link")
    _email(patient, released, fields, "link")  # a second press, or the page sent again
    _email(patient, released, fields, "code")
    shares = [subject for subject in outbox_summaries(neuro.schema_name) if "shared with you" in subject]
    assert shares == ["A second opinion shared with you", "The code for a second opinion shared with you"]
    outbox_deliver_all(neuro.schema_name)  # the worker
    assert len(_to_doctor()) == 2


def test_it_refuses_a_link_or_code_that_is_not_the_shares(
    neuro: Institution, released: Case, patient: Client
) -> None:
    fields = _share_fields(patient, released)
    for wrong in ({"code": "AAAAA-AAAAA"}, {"token": "made-up-token"}, {"share": "not-an-id"}):
        page = patient.post(
            f"/opinions/{released.public_id}/share/email", {**fields, **wrong, "part": "code"}, follow=True
        )
        assert SHARE_NOT_FOUND in page.content.decode()
    assert _to_doctor() == []


def test_it_refuses_a_withdrawn_share(neuro: Institution, released: Case, patient: Client) -> None:
    fields = _share_fields(patient, released)
    patient.post(f"/opinions/{released.public_id}/share/revoke", {"share": fields["share"]})
    page = patient.post(
        f"/opinions/{released.public_id}/share/email", {**fields, "part": "link"}, follow=True
    )
    assert SHARE_NOT_FOUND in page.content.decode() and _to_doctor() == []


def test_it_says_what_is_wrong_with_the_address(neuro: Institution, released: Case, patient: Client) -> None:
    fields = _share_fields(patient, released)
    page = _email(patient, released, {**fields, "address": "not an address"}, "link")
    assert ADDRESS_INVALID.replace("'", "&#x27;") in page and fields["code"] in page
    assert not [message for message in mail.outbox if "/shared/" in message.body]


def test_it_limits_how_many_emails_a_patient_sends(
    neuro: Institution, released: Case, patient: Client
) -> None:
    cache.clear()
    fields = _share_fields(patient, released)
    with override_settings(ACCOUNT_RATE_LIMITS=SR_RATE_LIMITS):
        for n in range(10):
            _email(patient, released, {**fields, "address": f"doctor{n}@clinic.example.com"}, "link")
        page = _email(patient, released, {**fields, "address": "one-more@clinic.example.com"}, "link")
    assert "Too many attempts" in page
    assert not [message for message in mail.outbox if message.to == ["one-more@clinic.example.com"]]


def test_outsiders_cannot_email_a_patients_share(
    neuro: Institution, cancer_client: Client, released: Case, patient: Client
) -> None:
    fields = {**_share_fields(patient, released), "part": "code"}
    url = f"/opinions/{released.public_id}/share/email"
    signed_out = Client(HTTP_HOST="neuro.localhost").post(url, fields)
    assert signed_out.status_code == 302 and "/accounts/login/" in signed_out["Location"]
    other = Client(HTTP_HOST="neuro.localhost")
    staff_force_login(other, "coordinator@neuro.example.com")  # staff: not the patient's to send
    assert other.post(url, fields).status_code in (403, 404)
    staff_force_login(cancer_client, "patient@cancer.example.com")  # another institution
    assert cancer_client.post(url, fields).status_code == 404
    assert _to_doctor() == []


def test_the_doctors_emails_are_in_the_patients_language(
    neuro: Institution, released: Case, patient: Client
) -> None:
    patient.defaults["HTTP_ACCEPT_LANGUAGE"] = "es"  # the patient's browser asks for Spanish
    fields = _share_fields(patient, released)
    _email(patient, released, fields, "link")
    (link_email,) = _to_doctor()
    assert link_email.subject == "Una segunda opinión compartida con usted"
    assert "se lo da por separado" in link_email.body
