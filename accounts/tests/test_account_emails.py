"""Account emails (sign-up confirmation, password reset) come in the institution's name on its
site, with replies to its support address; the platform's own stay SecondRead's."""

from __future__ import annotations

from django.conf import settings
from django.core import mail
from django.test import Client
from django_tenants.utils import schema_context

from branding.models import Brand
from tenants.models import Institution


def _address(sender: str) -> str:
    return sender.rsplit("<", 1)[-1].rstrip(">")


def test_it_sends_password_resets_in_the_institutions_name(neuro_client: Client, neuro: Institution) -> None:
    support = Brand.objects.get(institution=neuro).support_email
    assert support
    mail.outbox.clear()
    neuro_client.post("/accounts/password/reset/", {"email": "patient@neuro.example.com"})
    (message,) = mail.outbox
    assert (
        message.from_email == f"Northfield Neurological Institute <{_address(settings.DEFAULT_FROM_EMAIL)}>"
    )
    assert message.reply_to == [support]
    assert message.to == ["patient@neuro.example.com"]


def test_it_sends_sign_up_confirmations_in_the_institutions_name(
    cancer_client: Client, cancer: Institution
) -> None:
    Brand.objects.filter(institution=cancer).update(support_email="")
    mail.outbox.clear()
    cancer_client.post(
        "/accounts/signup/",
        {
            "email": "new-patient@example.org",
            "password1": "a-long-password-1",
            "password2": "a-long-password-1",
            "full_name": "New Patient",
            "submitter_relation": "self",
        },
    )
    with schema_context(cancer.schema_name):
        from accounts.models import User

        assert User.objects.filter(email="new-patient@example.org").exists()
    (message,) = mail.outbox
    assert message.from_email.startswith("Lakeside Cancer Center <")
    assert message.reply_to == []  # no support address: no Reply-To


def test_it_keeps_the_platforms_own_emails_in_secondreads_name(platform_client: Client) -> None:
    mail.outbox.clear()
    platform_client.post("/accounts/password/reset/", {"email": "operator@secondread.example.com"})
    (message,) = mail.outbox
    assert message.from_email == settings.DEFAULT_FROM_EMAIL
