"""The onboarding wizard on the platform's domain: the applicant's account (sign-up, email
confirmation, sign-in), then one step per page until the institution goes live."""

# long module: the wizard's pages in the order an applicant meets them; every step shares the
# applicant check, the step context and the redirect to the next step.

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, JsonResponse
from django.http.response import HttpResponseBase
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.ratelimits import TOO_MANY_ATTEMPTS, attempt_allowed
from branding.forms import BrandLookForm, BrandTextsForm, EmbedOriginsForm, LogoForm, brand_form_values
from branding.models import Brand
from branding.services import LogoRejected, brand_look_save, brand_update
from institutions import onboarding as wizard
from institutions.access import ONBOARDING_SESSION_KEY, access_onboarding
from institutions.forms import (
    FeeForm,
    InvitationForm,
    OnboardingSignInForm,
    OnboardingVerifyForm,
    ServiceForm,
    SignUpForm,
    SubdomainForm,
)
from institutions.institution_settings import (
    institution_fee_problem,
    institution_fee_update,
    institution_service_update,
    institution_settings_get,
)
from institutions.invitations import InvitationRefused, invitation_create, invitation_revoke
from institutions.recovery import onboarding_stale
from payments.selectors import payment_setup_get
from storage.tenant import tenant_storage
from tenants.models import Invitation, Onboarding
from tenants.services import platform_host
from tenants.subdomains import SUBDOMAIN_AVAILABLE, subdomain_problem

ViewFunc = Callable[..., HttpResponseBase]


# --- Onboarding: account --------------------------------------------------------------------


PENDING_ONBOARDING_SESSION_KEY = "onboarding_pending_email"


def onboarding_start(request: HttpRequest) -> HttpResponse:
    if request.session.get(ONBOARDING_SESSION_KEY):
        return redirect("onboarding:resume")
    form = SignUpForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        email = form.cleaned_data["email"].strip().lower()
        if not attempt_allowed(request, action="onboarding_start", key=email):
            form.add_error(None, TOO_MANY_ATTEMPTS)
            return render(request, "institutions/onboarding/start.html", {"form": form}, status=429)
        wizard.onboarding_start(
            institution_name=form.cleaned_data["institution_name"],
            full_name=form.cleaned_data["full_name"],
            email=email,
            password=form.cleaned_data["password1"],
        )
        # This browser typed the password: following the link here proves both.
        request.session[PENDING_ONBOARDING_SESSION_KEY] = email
        return render(request, "institutions/onboarding/check_email.html", {"email": email})
    return render(request, "institutions/onboarding/start.html", {"form": form})


def _sign_applicant_in(request: HttpRequest, onboarding: Onboarding) -> None:
    request.session.cycle_key()  # no session fixation across the sign-in
    request.session.pop(PENDING_ONBOARDING_SESSION_KEY, None)
    request.session[ONBOARDING_SESSION_KEY] = onboarding.pk


@require_http_methods(["GET", "POST"])
def onboarding_verify(request: HttpRequest, token: str) -> HttpResponse:
    try:
        onboarding = wizard.onboarding_for_verification(token=token)
    except wizard.OnboardingRefused as refusal:
        return render(
            request, "institutions/onboarding/link_invalid.html", {"message": str(refusal)}, status=400
        )
    same_browser = request.session.get(PENDING_ONBOARDING_SESSION_KEY) == onboarding.email
    form = OnboardingVerifyForm(request.POST if request.method == "POST" else None)
    if (
        not same_browser
        and request.method == "POST"
        and not attempt_allowed(request, action="onboarding_verify", key=onboarding.email)
    ):
        form = OnboardingVerifyForm()
        form.add_error(None, TOO_MANY_ATTEMPTS)
        return render(request, "institutions/onboarding/verify.html", {"form": form}, status=429)
    if same_browser or form.is_valid():
        try:
            wizard.onboarding_verify(
                onboarding=onboarding, password=None if same_browser else form.cleaned_data["password"]
            )
        except wizard.OnboardingRefused as refusal:
            form.add_error("password", str(refusal))
        else:
            _sign_applicant_in(request, onboarding)
            messages.success(request, "Your email is confirmed. Let's set up your service.")
            return redirect("onboarding:resume")
    return render(request, "institutions/onboarding/verify.html", {"form": form, "email": onboarding.email})


def onboarding_sign_in(request: HttpRequest) -> HttpResponse:
    form = OnboardingSignInForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        if not attempt_allowed(request, action="onboarding_sign_in", key=form.cleaned_data["email"].lower()):
            form.add_error(None, TOO_MANY_ATTEMPTS)
            return render(request, "institutions/onboarding/sign_in.html", {"form": form}, status=429)
        onboarding = wizard.onboarding_authenticate(
            email=form.cleaned_data["email"], password=form.cleaned_data["password"]
        )
        if onboarding is not None:
            _sign_applicant_in(request, onboarding)
            return redirect("onboarding:resume")
        form.add_error(None, wizard.SIGN_IN_FAILED)
    return render(request, "institutions/onboarding/sign_in.html", {"form": form})


@require_POST
def onboarding_sign_out(request: HttpRequest) -> HttpResponse:
    request.session.flush()
    return redirect("platform_home")


# --- Onboarding: the steps --------------------------------------------------------------------


def applicant_required(view: ViewFunc) -> ViewFunc:
    """Signed-in applicants only; others are sent to the wizard's sign-in page."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        try:
            onboarding = access_onboarding(request)
        except PermissionDenied:
            if request.headers.get("Accept", "").startswith("application/json"):
                raise
            return redirect(reverse("onboarding:sign_in"))
        return view(request, onboarding, *args, **kwargs)

    return wrapper


def _step_context(onboarding: Onboarding, step: str, **extra: Any) -> dict[str, Any]:
    institution = onboarding.institution
    return {
        "onboarding": onboarding,
        "draft": institution,
        "steps": [
            {
                "name": name,
                "title": title,
                "done": name in onboarding.completed_steps,
                "current": name == step,
            }
            for name, title in wizard.STEPS
        ],
        "step": step,
        "future_host": platform_host(slug=institution.slug) if institution else None,
        **extra,
    }


def _next_step(step: str) -> HttpResponse:
    index = wizard.STEP_NAMES.index(step)
    return redirect("onboarding:step", step=wizard.STEP_NAMES[min(index + 1, len(wizard.STEP_NAMES) - 1)])


@applicant_required
def onboarding_resume(request: HttpRequest, onboarding: Onboarding) -> HttpResponse:
    if onboarding.state != Onboarding.State.DRAFT:
        return redirect("onboarding:step", step="go-live")
    for name in wizard.STEP_NAMES[1:]:
        if name not in onboarding.completed_steps:
            return redirect("onboarding:step", step=name)
    return redirect("onboarding:step", step="go-live")


@applicant_required
def onboarding_step(request: HttpRequest, onboarding: Onboarding, step: str) -> HttpResponse:
    handlers: dict[str, Callable[[HttpRequest, Onboarding], HttpResponse]] = {
        "subdomain": _step_subdomain,
        "branding": _step_branding,
        "texts": _step_texts,
        "fee": _step_fee,
        "service": _step_service,
        "team": _step_team,
        "website": _step_website,
        "go-live": _step_go_live,
    }
    if step not in handlers:
        raise Http404
    if step != "subdomain" and onboarding.institution is None:
        messages.info(request, wizard.SUBDOMAIN_FIRST)
        return redirect("onboarding:step", step="subdomain")
    if (
        request.method == "POST"
        and onboarding.state not in (Onboarding.State.DRAFT, Onboarding.State.FAILED)
        # A go-live whose worker died may be asked for again (institutions.recovery).
        and not (step == "go-live" and onboarding_stale(onboarding=onboarding))
    ):
        return redirect("onboarding:step", step="go-live")
    return handlers[step](request, onboarding)


def _step_subdomain(request: HttpRequest, onboarding: Onboarding) -> HttpResponse:
    current = onboarding.institution.slug if onboarding.institution else ""
    form = SubdomainForm(request.POST or None, initial={"slug": current})
    if request.method == "POST" and form.is_valid():
        try:
            wizard.onboarding_subdomain_set(onboarding=onboarding, slug=form.cleaned_data["slug"])
        except wizard.OnboardingRefused as refusal:
            form.add_error("slug", str(refusal))
        else:
            return _next_step("subdomain")
    return render(
        request,
        "institutions/onboarding/subdomain.html",
        _step_context(onboarding, "subdomain", form=form, platform_domain=platform_host()),
    )


def _step_branding(request: HttpRequest, onboarding: Onboarding) -> HttpResponse:
    institution = onboarding.institution
    assert institution is not None
    brand = Brand.objects.get(institution=institution)
    form = BrandLookForm(request.POST or None, instance=brand)
    logo_form = LogoForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid() and logo_form.is_valid():
        try:
            brand_look_save(brand=brand, values=brand_form_values(form), logo=logo_form.cleaned_data["logo"])
        except LogoRejected as refusal:
            logo_form.add_error("logo", str(refusal))
        else:
            wizard.onboarding_step_complete(onboarding=onboarding, step="branding")
            return _next_step("branding")
    return render(
        request,
        "institutions/onboarding/branding.html",
        _step_context(
            onboarding,
            "branding",
            form=form,
            logo_form=logo_form,
            brand=brand,
            logo_url=reverse("onboarding:logo") + f"?v={brand.logo_version}" if brand.logo_key else "",
        ),
    )


def _step_texts(request: HttpRequest, onboarding: Onboarding) -> HttpResponse:
    brand = Brand.objects.get(institution=onboarding.institution)
    form = BrandTextsForm(request.POST or None, instance=brand)
    if request.method == "POST" and form.is_valid():
        brand_update(brand=brand, values=brand_form_values(form))
        wizard.onboarding_step_complete(onboarding=onboarding, step="texts")
        return _next_step("texts")
    return render(
        request, "institutions/onboarding/texts.html", _step_context(onboarding, "texts", form=form)
    )


def _step_fee(request: HttpRequest, onboarding: Onboarding) -> HttpResponse:
    assert onboarding.institution is not None
    row = institution_settings_get(institution=onboarding.institution)
    form = FeeForm(request.POST or None, instance=row)
    if request.method == "POST" and form.is_valid():
        institution_fee_update(
            institution=onboarding.institution,
            fee_enabled=form.cleaned_data["fee_enabled"],
            fee_amount=form.cleaned_data["fee_amount"],
            fee_currency=form.cleaned_data["fee_currency"],
            fee_waivers_only=form.cleaned_data["fee_waivers_only"],
        )
        wizard.onboarding_step_complete(onboarding=onboarding, step="fee")
        if institution_fee_problem(institution=onboarding.institution):
            return redirect("onboarding:step", step="fee")  # connect Stripe here first
        return _next_step("fee")
    return render(
        request,
        "institutions/onboarding/fee.html",
        _step_context(
            onboarding,
            "fee",
            form=form,
            settings_row=row,
            payment_setup=payment_setup_get(institution=onboarding.institution),
            fee_problem=institution_fee_problem(institution=onboarding.institution),
        ),
    )


def _step_service(request: HttpRequest, onboarding: Onboarding) -> HttpResponse:
    assert onboarding.institution is not None
    row = institution_settings_get(institution=onboarding.institution)
    form = ServiceForm(request.POST or None, instance=row)
    if request.method == "POST" and form.is_valid():
        institution_service_update(
            institution=onboarding.institution,
            turnaround_business_days=form.cleaned_data["turnaround_business_days"],
            specialties=form.cleaned_data["specialties"],
            time_zone=form.cleaned_data["time_zone"],
        )
        wizard.onboarding_step_complete(onboarding=onboarding, step="service")
        return _next_step("service")
    return render(
        request, "institutions/onboarding/service.html", _step_context(onboarding, "service", form=form)
    )


def _step_team(request: HttpRequest, onboarding: Onboarding) -> HttpResponse:
    institution = onboarding.institution
    assert institution is not None
    form = InvitationForm(request.POST if request.POST.get("action") == "invite" else None)
    if request.method == "POST":
        action = request.POST.get("action")
        if action == "invite" and form.is_valid():
            try:
                invitation_create(institution=institution, **form.cleaned_data)
            except InvitationRefused as refusal:
                form.add_error(None, str(refusal))
            else:
                messages.success(request, f"{form.cleaned_data['email']} will be invited when you go live.")
                return redirect("onboarding:step", step="team")
        elif action == "revoke":
            invitation_revoke(
                institution=institution, invitation_id=int(request.POST.get("invitation", 0) or 0)
            )
            return redirect("onboarding:step", step="team")
        elif action == "continue":
            wizard.onboarding_step_complete(onboarding=onboarding, step="team")
            return _next_step("team")
    invitations = Invitation.objects.filter(institution=institution, revoked__isnull=True)
    return render(
        request,
        "institutions/onboarding/team.html",
        _step_context(onboarding, "team", form=form, invitations=invitations),
    )


def _step_website(request: HttpRequest, onboarding: Onboarding) -> HttpResponse:
    institution = onboarding.institution
    assert institution is not None
    brand = Brand.objects.get(institution=institution)
    form = EmbedOriginsForm(request.POST or None, instance=brand)
    if request.method == "POST" and form.is_valid():
        brand_update(brand=brand, values=brand_form_values(form))
        wizard.onboarding_step_complete(onboarding=onboarding, step="website")
        return _next_step("website")
    from tenants.services import platform_url

    return render(
        request,
        "institutions/onboarding/website.html",
        _step_context(onboarding, "website", form=form, portal_url=platform_url(slug=institution.slug)),
    )


def _step_go_live(request: HttpRequest, onboarding: Onboarding) -> HttpResponse:
    if request.method == "POST":
        try:
            wizard.onboarding_go_live_request(onboarding_id=onboarding.pk)
        except wizard.OnboardingRefused as refusal:
            messages.error(request, str(refusal))
        return redirect("onboarding:step", step="go-live")
    from tenants.services import platform_url

    institution = onboarding.institution
    assert institution is not None
    return render(
        request,
        "institutions/onboarding/go_live.html",
        _step_context(
            onboarding,
            "go-live",
            missing=wizard.onboarding_missing_steps(onboarding=onboarding),
            fee_problem=institution_fee_problem(institution=institution),
            portal_url=platform_url(slug=institution.slug),
            settings_row=institution_settings_get(institution=institution),
            brand=Brand.objects.get(institution=institution),
            invitations=Invitation.objects.filter(institution=institution, revoked__isnull=True),
        ),
    )


@require_GET
@applicant_required
def onboarding_progress(request: HttpRequest, onboarding: Onboarding) -> JsonResponse:
    from tenants.services import platform_url

    institution = onboarding.institution
    return JsonResponse(
        {
            "state": onboarding.state,
            "percent": onboarding.progress,
            "message": onboarding.progress_message,
            "portal_url": platform_url(slug=institution.slug) if institution else None,
            "status": institution.status if institution else None,
        }
    )


@require_GET
@applicant_required
def onboarding_subdomain_check(request: HttpRequest, onboarding: Onboarding) -> JsonResponse:
    slug = request.GET.get("slug", "").strip().lower()[:63]
    problem = subdomain_problem(slug=slug, institution=onboarding.institution)
    return JsonResponse(
        {"ok": problem is None, "message": problem or SUBDOMAIN_AVAILABLE, "host": platform_host(slug=slug)}
    )


@require_GET
@applicant_required
def onboarding_logo(request: HttpRequest, onboarding: Onboarding) -> FileResponse:
    brand = Brand.objects.filter(institution=onboarding.institution).first()
    if brand is None or not brand.logo_key or onboarding.institution is None:
        raise Http404
    files = tenant_storage(onboarding.institution.schema_name)
    response = FileResponse(files.open(brand.logo_key), content_type="image/png")
    response["Cache-Control"] = "private, max-age=60"
    return response
