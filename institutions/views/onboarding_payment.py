"""The Fee step's payment account: an applicant connects the institution's own Stripe account
(Connect) before going live, so a fee patients are asked for can be paid from day one. The
institution's row exists from the subdomain step on, and Stripe accounts are kept in the public
schema, so the same services as the institution's own payment settings apply."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from institutions.views.onboarding import applicant_required
from payments.selectors import payment_setup_get
from payments.services.common import PaymentError
from payments.services.connect import stripe_account_connect_start, stripe_account_sync
from tenants.models import Onboarding

STRIPE_CONNECTED = "Your Stripe account is connected: patients can pay by card."
STRIPE_UNFINISHED = (
    "Stripe has not finished setting up your account yet. Continue with Stripe, or check again later."
)


def _fee_step() -> HttpResponse:
    return redirect("onboarding:step", step="fee")


@require_POST
@applicant_required
def onboarding_stripe_connect(request: HttpRequest, onboarding: Onboarding) -> HttpResponse:
    if onboarding.institution is None or onboarding.state not in (
        Onboarding.State.DRAFT,
        Onboarding.State.FAILED,
    ):
        return _fee_step()
    back = request.build_absolute_uri(reverse("onboarding:stripe_return"))
    try:
        url = stripe_account_connect_start(
            institution=onboarding.institution, return_url=back, refresh_url=back
        )
    except PaymentError as error:
        messages.error(request, error.message)
        return _fee_step()
    return redirect(url)


@require_GET
@applicant_required
def onboarding_stripe_return(request: HttpRequest, onboarding: Onboarding) -> HttpResponse:
    """Back from Stripe: ask Stripe for the account's state (nothing else changes here)."""
    if onboarding.institution is None:
        return _fee_step()
    account = payment_setup_get(institution=onboarding.institution).account
    if account is not None:
        try:
            account = stripe_account_sync(account=account)
        except PaymentError as error:
            messages.error(request, error.message)
        else:
            if account.can_charge:
                messages.success(request, STRIPE_CONNECTED)
            else:
                messages.info(request, STRIPE_UNFINISHED)
    return _fee_step()
