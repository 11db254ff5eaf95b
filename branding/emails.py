"""Emails in the institution's name, look and colours (HTML and plain text)."""

from __future__ import annotations

from email.utils import formataddr, parseaddr
from typing import Any

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string

from branding.colours import readable_text_on
from branding.selectors import brand_for_institution
from outbox.mail import email_key_set
from tenants.models import Institution
from tenants.services import platform_url


def branded_email_send(
    *,
    institution: Institution,
    to: list[str],
    subject: str,
    template: str,
    context: dict[str, Any] | None = None,
    dedupe_key: str | None = None,
) -> None:
    """Send ``<template>.txt`` and ``<template>.html`` wrapped in the institution's branding.

    Precondition: both templates exist; the HTML one extends "branding/email/base.html".
    The sender name is the institution's, so patients see who writes to them. The email is
    written to the outbox (``EMAIL_BACKEND``) in the caller's transaction; with ``dedupe_key``
    it is sent at most once for that key.
    """
    brand = brand_for_institution(institution=institution)
    primary = brand.primary_colour if brand else "#0b5cab"
    slug = None if institution.schema_name == "public" else institution.slug
    full_context = {
        "institution": institution,
        "brand": brand,
        "brand_primary": primary,
        "brand_on_primary": readable_text_on(primary),
        "portal_url": platform_url(slug=slug),
        **(context or {}),
    }
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
