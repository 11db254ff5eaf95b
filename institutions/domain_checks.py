"""Custom domains checked again every day: one that no longer points at us stops being routed
(no dangling-domain takeover) and the institution's admins are told what to fix."""

from __future__ import annotations

import logging

from django.conf import settings
from django.urls import reverse
from django.utils import formats, timezone
from django_tenants.utils import tenant_context

from accounts.models import User
from branding.emails import branded_email_send
from tenants.custom_domains import DOMAIN_DISABLED, custom_domain_recheck, custom_domains_verified
from tenants.models import CustomDomain
from tenants.selectors import institution_primary_url

logger = logging.getLogger(__name__)


def _admins_tell(*, claim: CustomDomain, problem: str) -> None:
    """Email the institution's admins (an outbox message in the institution's own schema, so
    its staff see it among their emails if it cannot be delivered)."""
    institution = claim.institution
    when = formats.date_format(timezone.localdate(), "j F Y")
    with tenant_context(institution):
        admins = list(
            User.objects.filter(is_institution_admin=True, is_active=True).values_list("email", flat=True)
        )
        if not admins:
            return
        branded_email_send(
            institution=institution,
            to=admins,
            subject=f"{claim.domain} no longer reaches your second-opinion portal",
            template="institutions/email/domain_disabled",
            context={
                "domain": claim.domain,
                "summary": DOMAIN_DISABLED.format(domain=claim.domain, date=when, problem=problem),
                "settings_url": institution_primary_url(institution=institution).rstrip("/")
                + reverse("settings:domains", urlconf=settings.ROOT_URLCONF),
            },
            dedupe_key=f"domain-disabled:{claim.pk}:{timezone.localdate().isoformat()}",
        )


def custom_domains_recheck_all() -> int:
    """Check every routed custom domain's DNS; return how many were disabled."""
    disabled = 0
    after = 0
    while batch := custom_domains_verified(after_id=after):
        for claim in batch:
            after = claim.pk
            problem = custom_domain_recheck(claim=claim)
            if problem is None:
                continue
            disabled += 1
            logger.warning("custom domain disabled", extra={"claim": claim.pk})
            try:
                _admins_tell(claim=claim, problem=problem)
            except Exception:  # the domain is off either way; the settings page shows why
                logger.exception("custom domain notice failed", extra={"claim": claim.pk})
    return disabled
