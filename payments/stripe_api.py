"""The one place that builds a Stripe client from the platform's settings.

Every call made for an institution passes ``stripe_account`` (the ``Stripe-Account`` header),
so it acts on the institution's own connected account with the platform's key.
"""

from __future__ import annotations

from django.conf import settings
from stripe import StripeClient

# Seconds a webhook signature timestamp may be old (Stripe's recommended default).
WEBHOOK_TOLERANCE_SECONDS = 300


def stripe_configured() -> bool:
    """Whether the platform can take payments at all (a platform key is set)."""
    return bool(settings.STRIPE_SECRET_KEY)


def stripe_client() -> StripeClient:
    """A client for the platform's key; precondition: ``stripe_configured()``."""
    base = settings.STRIPE_API_BASE
    return StripeClient(
        settings.STRIPE_SECRET_KEY,
        base_addresses={"api": base.rstrip("/")} if base else None,
        # Idempotency keys make retries safe; keep them few so a request does not hang long.
        max_network_retries=1,
    )
