"""The institution's own Stripe account (Connect): onboarding, syncing its state, disconnecting."""

from __future__ import annotations

import logging

import stripe
from django.utils import timezone

from payments.connect.models import StripeAccount
from payments.selectors import stripe_account_current
from payments.services.common import CONNECT_NOT_CONFIGURED, CONNECT_STRIPE_ERROR, PaymentError
from payments.stripe_api import stripe_client, stripe_configured
from tenants.models import Institution

logger = logging.getLogger(__name__)


def stripe_account_connect_start(*, institution: Institution, return_url: str, refresh_url: str) -> str:
    """The Stripe-hosted onboarding URL for the institution's own (Standard) account.

    The first time, a Standard account is created for the institution; afterwards a fresh
    onboarding link for the same account is made (links are single-use and short-lived).
    """
    if not stripe_configured():
        raise PaymentError(CONNECT_NOT_CONFIGURED)
    client = stripe_client()
    account = stripe_account_current(institution=institution)
    try:
        if account is None:
            earlier = StripeAccount.objects.filter(institution=institution).count()
            created = client.v1.accounts.create(
                params={"type": "standard", "metadata": {"institution": institution.slug}},
                options={"idempotency_key": f"connect-{institution.schema_name}-{earlier + 1}"},
            )
            account = StripeAccount.objects.create(
                institution=institution,
                account_id=created.id,
                charges_enabled=bool(getattr(created, "charges_enabled", False)),
                details_submitted=bool(getattr(created, "details_submitted", False)),
                payouts_enabled=bool(getattr(created, "payouts_enabled", False)),
            )
        link = client.v1.account_links.create(
            params={
                "account": account.account_id,
                "refresh_url": refresh_url,
                "return_url": return_url,
                "type": "account_onboarding",
            }
        )
    except stripe.StripeError as exc:
        logger.warning("stripe connect not started: %s", type(exc).__name__)
        raise PaymentError(CONNECT_STRIPE_ERROR) from exc
    return str(link.url)


def stripe_account_sync(*, account: StripeAccount) -> StripeAccount:
    """Ask Stripe for the account's state now (after onboarding, or the admin's "refresh")."""
    if not stripe_configured():
        raise PaymentError(CONNECT_NOT_CONFIGURED)
    try:
        remote = stripe_client().v1.accounts.retrieve(account.account_id)
    except stripe.StripeError as exc:
        logger.warning("stripe account not retrieved: %s", type(exc).__name__)
        raise PaymentError(CONNECT_STRIPE_ERROR) from exc
    account.charges_enabled = bool(getattr(remote, "charges_enabled", False))
    account.details_submitted = bool(getattr(remote, "details_submitted", False))
    account.payouts_enabled = bool(getattr(remote, "payouts_enabled", False))
    account.synced_at = timezone.now()
    account.save(update_fields=["charges_enabled", "details_submitted", "payouts_enabled", "synced_at"])
    return account


def stripe_account_state_apply(
    *,
    account: StripeAccount,
    charges_enabled: bool,
    details_submitted: bool,
    payouts_enabled: bool,
    created: int,
) -> bool:
    """Apply an ``account.updated`` event unless a newer one was applied already."""
    if created < account.last_event_created:
        return False
    account.charges_enabled = charges_enabled
    account.details_submitted = details_submitted
    account.payouts_enabled = payouts_enabled
    account.last_event_created = created
    account.synced_at = timezone.now()
    account.save(
        update_fields=[
            "charges_enabled",
            "details_submitted",
            "payouts_enabled",
            "last_event_created",
            "synced_at",
        ]
    )
    return True


def stripe_account_disconnect(*, account: StripeAccount) -> StripeAccount:
    """Stop taking payments through the account. The Stripe account stays the institution's
    (Standard accounts belong to them); earlier payments stay refundable from its dashboard."""
    if account.disconnected_at is None:
        account.disconnected_at = timezone.now()
        account.charges_enabled = False
        account.save(update_fields=["disconnected_at", "charges_enabled"])
    return account
