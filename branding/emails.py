"""Emails in the institution's name, look and colours (HTML and plain text)."""

from __future__ import annotations

from email.utils import formataddr, parseaddr
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string
from django.utils import timezone, translation

from branding.colours import readable_text_on
from branding.selectors import brand_for_institution
from branding.services import brand_logo_measure
from outbox.mail import email_key_set
from tenants.models import Institution
from tenants.selectors import institution_portal_url
from tenants.services import platform_url
from tenants.timezones import institution_zone

if TYPE_CHECKING:
    from django_stubs_ext import StrOrPromise

# The logo in an email's header: this high, at most this wide, its aspect ratio kept.
EMAIL_LOGO_HEIGHT = 40
EMAIL_LOGO_MAX_WIDTH = 160


def branded_email_send(
    *,
    institution: Institution,
    to: list[str],
    subject: StrOrPromise,
    template: str,
    context: dict[str, Any] | None = None,
    dedupe_key: str | None = None,
    language: str = "",
) -> None:
    """Send ``<template>.txt`` and ``<template>.html`` wrapped in the institution's branding.

    Precondition: both templates exist; the HTML one extends "branding/email/base.html".
    The sender name is the institution's, so patients see who writes to them. Links go to
    the institution's verified own domain when it has one (``portal_url``). The email is
    written to the outbox (``EMAIL_BACKEND``) in the caller's transaction; with ``dedupe_key``
    it is sent at most once for that key.

    The email is written in ``language`` (the patient's, ``User.language``; a lazy ``subject``
    is translated too), else in English (staff's emails, whatever page caused them). A
    patient's language the institution no longer offers gives way to its default language.
    """
    brand = brand_for_institution(institution=institution)
    if language and brand and language not in brand.language_list:
        language = brand.default_language
    primary = brand.primary_colour if brand else "#0b5cab"
    if institution.schema_name == "public":
        portal_url = platform_url()
    else:
        portal_url = institution_portal_url(institution=institution)
    logo_size = (0, 0)
    if brand and brand.logo_key:
        logo_size = brand_logo_measure(brand=brand).logo_box(
            height=EMAIL_LOGO_HEIGHT, max_width=EMAIL_LOGO_MAX_WIDTH
        )
    full_context = {
        "institution": institution,
        "brand": brand,
        "brand_primary": primary,
        "brand_on_primary": readable_text_on(primary),
        "portal_url": portal_url,
        "logo_width": logo_size[0],
        "logo_height": logo_size[1],
        **(context or {}),
    }
    # Dates in the email are the institution's wall clock, whether it is written in a request,
    # a task or a Stripe webhook (which arrives on the platform's domain, in UTC).
    zone = institution_zone(institution) if institution.schema_name != "public" else None
    with translation.override(language or settings.LANGUAGE_CODE), timezone.override(zone):
        subject = str(subject)
        text = render_to_string(f"{template}.txt", full_context)
        html = render_to_string(f"{template}.html", full_context)
    _, sender_address = parseaddr(settings.DEFAULT_FROM_EMAIL)
    message = EmailMultiAlternatives(
        subject=subject,
        body=text,
        # formataddr quotes names with commas or other specials ("Lakeside, Inc.").
        from_email=formataddr((institution.name, sender_address)),
        to=to,
        reply_to=[brand.support_email] if brand and brand.support_email else None,
    )
    message.attach_alternative(html, "text/html")
    if dedupe_key:
        email_key_set(message, dedupe_key)
    message.send()
