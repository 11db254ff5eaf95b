"""Payment pages: the patient's payment step, the admin's settings and the payments report,
and the platform's Stripe webhook endpoint."""

from __future__ import annotations

import datetime
import uuid

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext, gettext_noop
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from accounts.http import InstitutionRequest, SignedInRequest
from accounts.ratelimits import TOO_MANY_ATTEMPTS, attempt_allowed
from exports.csv import csv_response
from payments.access import (
    access_case_to_pay,
    access_payment_reports,
    access_payment_settings,
    access_waiver_code,
)
from payments.forms import WaiverApplyForm, WaiverCodeForm
from payments.models import Payment
from payments.selectors import (
    CSV_HEADER,
    payment_methods_get,
    payment_setup_get,
    payments_export_rows,
    payments_list,
    price_quote_current,
    revenue_by_week,
    revenue_total,
    waiver_codes_list,
)
from payments.services import (
    CHECKOUT_NOT_AVAILABLE,
    CHECKOUT_WAIVERS_ONLY,
    WAIVER_APPLIED,
    PaymentError,
    checkout_start,
    payment_quote_ensure,
    stripe_account_connect_start,
    stripe_account_disconnect,
    stripe_account_sync,
    waiver_apply,
    waiver_code_create,
    waiver_code_deactivate,
)
from payments.webhooks import WebhookRefused, stripe_event_receive
from tenants.models import Institution

PAYMENT_CANCELLED = gettext_noop("Payment cancelled. Nothing was charged; you can pay when you are ready.")
CONNECTED_NOTICE = "Stripe account connected."
ONBOARDING_UNFINISHED = "Stripe has not finished checking the account yet. Card payments start once it has."
DISCONNECTED_NOTICE = (
    "Stripe account disconnected. Patients can no longer pay by card; the Stripe account itself stays yours."
)
REVENUE_WEEKS = 12


def _institution(request: InstitutionRequest) -> Institution:
    return request.tenant


def _absolute(request: HttpRequest, name: str, **kwargs: object) -> str:
    return request.build_absolute_uri(reverse(name, kwargs=kwargs or None))


# --- The patient's payment step ---------------------------------------------------------------


def _checkout_page(request: SignedInRequest, case_id: uuid.UUID, *, waiting: bool = False) -> HttpResponse:
    case = access_case_to_pay(request.user, case_id)
    payment = payment_quote_ensure(case=case)
    methods = payment_methods_get(institution=_institution(request))
    return render(
        request,
        "payments/checkout.html",
        {
            "case": case,
            "payment": payment,
            "setup": payment_setup_get(institution=_institution(request)),
            "methods": methods,
            "not_available": gettext(
                CHECKOUT_WAIVERS_ONLY if methods.waivers_only else CHECKOUT_NOT_AVAILABLE
            ),
            "waiting": waiting and payment.status in (Payment.Status.UNPAID, Payment.Status.PROCESSING),
        },
    )


@login_required
@require_GET
def checkout(request: SignedInRequest, case_id: uuid.UUID) -> HttpResponse:
    return _checkout_page(request, case_id)


@login_required
@require_POST
def checkout_pay(request: SignedInRequest, case_id: uuid.UUID) -> HttpResponse:
    case = access_case_to_pay(request.user, case_id)
    try:
        url = checkout_start(
            case=case,
            institution=_institution(request),
            success_url=_absolute(request, "payments:checkout_return", case_id=case.public_id)
            + "?session_id={CHECKOUT_SESSION_ID}",
            cancel_url=_absolute(request, "payments:checkout_cancelled", case_id=case.public_id),
        )
    except PaymentError as error:
        messages.error(request, gettext(error.message))
        return redirect("payments:checkout", case_id=case.public_id)
    return redirect(url)


@login_required
@require_GET
def checkout_return(request: SignedInRequest, case_id: uuid.UUID) -> HttpResponse:
    """Back from Stripe. Shows the state only: the payment counts once Stripe's webhook
    confirms it, so visiting this URL without paying changes nothing."""
    return _checkout_page(request, case_id, waiting=True)


@login_required
@require_GET
def checkout_cancelled(request: SignedInRequest, case_id: uuid.UUID) -> HttpResponse:
    case = access_case_to_pay(request.user, case_id)
    messages.info(request, gettext(PAYMENT_CANCELLED))
    return redirect("payments:checkout", case_id=case.public_id)


@login_required
@require_POST
def waiver_use(request: SignedInRequest, case_id: uuid.UUID) -> HttpResponse:
    case = access_case_to_pay(request.user, case_id)
    # Codes are guessable only by trying: every try counts, per patient and per address.
    if not attempt_allowed(request, action="waiver_code", user=case.owner):
        messages.error(request, gettext(TOO_MANY_ATTEMPTS))
        return redirect("payments:checkout", case_id=case.public_id)
    form = WaiverApplyForm(request.POST)
    if not form.is_valid():
        messages.error(request, gettext("Enter the waiver code you were given."))
        return redirect("payments:checkout", case_id=case.public_id)
    try:
        waiver_apply(case=case, code=form.cleaned_data["code"])
    except PaymentError as error:
        messages.error(request, gettext(error.message))
    else:
        messages.success(request, gettext(WAIVER_APPLIED))
    return redirect("payments:checkout", case_id=case.public_id)


# --- The admin's payment settings -------------------------------------------------------------


@login_required
@require_GET
def payment_settings(request: SignedInRequest) -> HttpResponse:
    """The fee as patients see it, the Stripe connection, and the waiver codes. The fee itself
    is edited with the institution's other service settings (tenants.InstitutionSettings)."""
    access_payment_settings(request.user)
    institution = _institution(request)
    return render(
        request,
        "payments/settings.html",
        {
            "quote": price_quote_current(institution=institution),
            "setup": payment_setup_get(institution=institution),
            "waiver_form": WaiverCodeForm(),
            "waiver_codes": waiver_codes_list(),
            "now": timezone.now(),
        },
    )


def _stripe_onboarding_redirect(request: SignedInRequest) -> HttpResponse:
    access_payment_settings(request.user)
    try:
        url = stripe_account_connect_start(
            institution=_institution(request),
            return_url=_absolute(request, "payments:stripe_return"),
            refresh_url=_absolute(request, "payments:stripe_refresh"),
        )
    except PaymentError as error:
        messages.error(request, error.message)
        return redirect("payments:settings")
    return redirect(url)


def _stripe_state_refresh(request: SignedInRequest) -> HttpResponse:
    access_payment_settings(request.user)
    setup = payment_setup_get(institution=_institution(request))
    if setup.account is not None:
        try:
            account = stripe_account_sync(account=setup.account)
        except PaymentError as error:
            messages.error(request, error.message)
        else:
            if account.can_charge:
                messages.success(request, CONNECTED_NOTICE)
            else:
                messages.info(request, ONBOARDING_UNFINISHED)
    return redirect("payments:settings")


@login_required
@require_POST
def stripe_connect(request: SignedInRequest) -> HttpResponse:
    return _stripe_onboarding_redirect(request)


@login_required
@require_GET
def stripe_refresh(request: SignedInRequest) -> HttpResponse:
    """Stripe sends the admin here when an onboarding link expired: make a fresh one. Only for
    an account already being connected: a GET must not create a Stripe account."""
    access_payment_settings(request.user)
    if payment_setup_get(institution=_institution(request)).account is None:
        return redirect("payments:settings")
    return _stripe_onboarding_redirect(request)


@login_required
@require_GET
def stripe_return(request: SignedInRequest) -> HttpResponse:
    """Back from Stripe's onboarding: ask Stripe for the account's state."""
    return _stripe_state_refresh(request)


@login_required
@require_POST
def stripe_sync(request: SignedInRequest) -> HttpResponse:
    return _stripe_state_refresh(request)


@login_required
@require_POST
def stripe_disconnect(request: SignedInRequest) -> HttpResponse:
    access_payment_settings(request.user)
    setup = payment_setup_get(institution=_institution(request))
    if setup.account is not None:
        stripe_account_disconnect(account=setup.account)
        messages.success(request, DISCONNECTED_NOTICE)
    return redirect("payments:settings")


@login_required
@require_POST
def waiver_code_add(request: SignedInRequest) -> HttpResponse:
    user = access_payment_settings(request.user)
    form = WaiverCodeForm(request.POST)
    if form.is_valid():
        try:
            waiver = waiver_code_create(
                code=form.cleaned_data["code"],
                purpose=form.cleaned_data["purpose"],
                max_uses=form.cleaned_data["max_uses"],
                expires_at=form.expires_at(),
                by=user,
            )
        except PaymentError as error:
            messages.error(request, error.message)
        else:
            messages.success(request, f"Waiver code {waiver.code} created.")
    else:
        for field_errors in form.errors.values():
            for problem in field_errors:
                messages.error(request, str(problem))
    return redirect("payments:settings")


@login_required
@require_POST
def waiver_code_withdraw(request: SignedInRequest, code_id: int) -> HttpResponse:
    waiver = access_waiver_code(request.user, code_id)
    waiver_code_deactivate(waiver=waiver)
    messages.success(request, f"Waiver code {waiver.code} withdrawn.")
    return redirect("payments:settings")


# --- Reports ----------------------------------------------------------------------------------


@login_required
@require_GET
def payments_overview(request: SignedInRequest) -> HttpResponse:
    access_payment_reports(request.user)
    since = timezone.now() - datetime.timedelta(weeks=REVENUE_WEEKS)
    return render(
        request,
        "payments/overview.html",
        {
            "weeks": revenue_by_week(since=since),
            "totals": revenue_total(since=since),
            "payments": payments_list()[:100],
            "setup": payment_setup_get(institution=_institution(request)),
            "revenue_weeks": REVENUE_WEEKS,
        },
    )


@login_required
@require_GET
def payments_export(request: SignedInRequest) -> StreamingHttpResponse:
    access_payment_reports(request.user)
    stamp = timezone.localdate().strftime("%Y%m%d")
    return csv_response(
        filename=f"payments-{_institution(request).slug}-{stamp}.csv",
        header=CSV_HEADER,
        rows=payments_export_rows(zone=timezone.get_current_timezone()),
    )


# --- Stripe's webhook (platform domain) -------------------------------------------------------


@csrf_exempt
@require_POST
def stripe_webhook(request: HttpRequest) -> HttpResponse:
    try:
        result = stripe_event_receive(payload=request.body, signature=request.headers.get("Stripe-Signature"))
    except WebhookRefused as refusal:
        return JsonResponse({"error": refusal.message}, status=refusal.status)
    return JsonResponse({"received": True, "outcome": result.outcome})
