"""Forms of the onboarding wizard, the admin's settings pages and the operator console."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django import forms
from django.contrib.auth import password_validation

from branding.forms import PlainLabels
from payments.stripe_api import stripe_configured
from tenants.models import FEE_CURRENCIES, InstitutionSettings, OperatorAction
from tenants.timezones import DEFAULT_TIME_ZONE, TIME_ZONE_UNKNOWN, time_zone_names

PASSWORDS_DIFFER = "The two passwords are not the same."
CARD_PAYMENT_UNAVAILABLE = (
    "Card payment is not available on this platform yet. Choose waiver codes only, or turn the fee off."
)
FEE_PAYMENT_CHOICES = [
    ("card", "By card, through your own Stripe account (you connect it before going live)"),
    ("waivers", "Waiver codes only: patients enter a code you give them; no card payment"),
]
FEE_AMOUNT_NEEDED = "Enter the fee (at least 1.00), or turn the fee off."
TOO_MANY_SPECIALTIES = "List at most 30 specialties."


class NewPasswordMixin(forms.Form):
    """``password1`` typed twice (``password2``) and checked against the password rules."""

    def clean(self) -> dict[str, object]:
        data = super().clean() or {}
        first, second = data.get("password1"), data.get("password2")
        if first and second and first != second:
            self.add_error("password2", PASSWORDS_DIFFER)
        elif first:
            try:
                password_validation.validate_password(str(first))
            except forms.ValidationError as error:
                self.add_error("password1", error)
        return data


class SignUpForm(NewPasswordMixin, PlainLabels, forms.Form):
    institution_name = forms.CharField(label="Institution name", max_length=200)
    full_name = forms.CharField(label="Your name", max_length=200)
    email = forms.EmailField(label="Your work email")
    password1 = forms.CharField(label="Password", widget=forms.PasswordInput, strip=False)
    password2 = forms.CharField(label="Password (again)", widget=forms.PasswordInput, strip=False)

    def clean_institution_name(self) -> str:
        from tenants.lookalike import NAME_HAS_MARKUP, NAME_LOOKS_LIKE_ANOTHER, lookalike_of, name_has_markup

        name = " ".join(str(self.cleaned_data["institution_name"]).split())
        if name_has_markup(name):
            raise forms.ValidationError(NAME_HAS_MARKUP)
        if lookalike_of(text=name):
            raise forms.ValidationError(NAME_LOOKS_LIKE_ANOTHER)
        return name


class OnboardingSignInForm(PlainLabels, forms.Form):
    email = forms.EmailField(label="Email")
    password = forms.CharField(label="Password", widget=forms.PasswordInput, strip=False)


class OnboardingVerifyForm(PlainLabels, forms.Form):
    password = forms.CharField(
        label="The password you chose when you signed up", widget=forms.PasswordInput, strip=False
    )


class SubdomainForm(PlainLabels, forms.Form):
    slug = forms.CharField(
        label="Web address",
        max_length=63,
        help_text="Lower-case letters, digits and hyphens. You can add your own domain later.",
        widget=forms.TextInput(
            attrs={"autocomplete": "off", "spellcheck": "false", "autocapitalize": "none"}
        ),
    )

    def clean_slug(self) -> str:
        return str(self.cleaned_data["slug"]).strip().lower()


class FeeForm(PlainLabels, forms.ModelForm):
    fee_enabled = forms.BooleanField(label="Patients pay a fee when they submit a case", required=False)
    fee_amount = forms.DecimalField(
        label="Fee", max_digits=8, decimal_places=2, min_value=Decimal("0"), max_value=Decimal("100000"),
        required=False,
    )  # fmt: skip
    fee_currency = forms.ChoiceField(label="Currency", choices=FEE_CURRENCIES)
    fee_payment = forms.ChoiceField(
        label="How patients pay",
        choices=FEE_PAYMENT_CHOICES,
        widget=forms.RadioSelect,
        required=False,
        initial="card",
    )

    class Meta:
        model = InstitutionSettings
        fields = ["fee_enabled", "fee_amount", "fee_currency"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.initial["fee_payment"] = "waivers" if self.instance.fee_waivers_only else "card"

    def clean(self) -> dict[str, object]:
        data = super().clean() or {}
        amount = data.get("fee_amount")
        if data.get("fee_enabled") and (amount is None or Decimal(str(amount)) < 1):
            self.add_error("fee_amount", FEE_AMOUNT_NEEDED)
        if amount is None:
            data["fee_amount"] = Decimal("0")
        data["fee_waivers_only"] = data.get("fee_payment") == "waivers"
        if data.get("fee_enabled") and not data["fee_waivers_only"] and not stripe_configured():
            self.add_error("fee_payment", CARD_PAYMENT_UNAVAILABLE)
        return data


class ServiceForm(PlainLabels, forms.ModelForm):
    turnaround_business_days = forms.IntegerField(
        label="Turnaround promise (business days)", min_value=1, max_value=60,
        help_text="How long after submission patients can expect the written opinion.",
    )  # fmt: skip
    specialties = forms.CharField(
        label="Specialties offered",
        required=False,
        help_text="One per line, e.g. Neuroradiology.",
        widget=forms.Textarea(attrs={"rows": 5}),
    )

    # Kept on the institution itself (the request already has it, so pages cost no query).
    time_zone = forms.ChoiceField(
        label="Time zone",
        help_text="Dates on pages, emails and signed opinions, and business days for the turnaround, use it.",
        choices=lambda: [(name, name) for name in time_zone_names()],
        required=False,  # left out: unchanged
        error_messages={"invalid_choice": TIME_ZONE_UNKNOWN},
    )

    class Meta:
        model = InstitutionSettings
        fields = ["turnaround_business_days", "specialties"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        institution = getattr(self.instance, "institution", None) if self.instance.institution_id else None
        self.fields["time_zone"].initial = institution.time_zone if institution else DEFAULT_TIME_ZONE
        if self.fields["time_zone"].initial == DEFAULT_TIME_ZONE:
            # Never chosen yet: the page starts from the browser's zone (frontend/src/onboarding.js).
            self.fields["time_zone"].widget.attrs["data-suggest-browser-zone"] = ""

    def clean_time_zone(self) -> str:
        return str(self.cleaned_data.get("time_zone") or self.fields["time_zone"].initial)

    def clean_specialties(self) -> str:
        lines = [line.strip()[:100] for line in str(self.cleaned_data.get("specialties") or "").splitlines()]
        lines = [line for line in lines if line]
        if len(lines) > 30:
            raise forms.ValidationError(TOO_MANY_SPECIALTIES)
        return "\n".join(dict.fromkeys(lines))


class InvitationForm(PlainLabels, forms.Form):
    email = forms.EmailField(label="Email")
    is_coordinator = forms.BooleanField(label="Coordinator", required=False)
    is_reviewer = forms.BooleanField(label="Reviewer (physician)", required=False)


class InvitationAcceptForm(NewPasswordMixin, PlainLabels, forms.Form):
    full_name = forms.CharField(label="Your name", max_length=200)
    password1 = forms.CharField(label="Choose a password", widget=forms.PasswordInput, strip=False)
    password2 = forms.CharField(label="Password (again)", widget=forms.PasswordInput, strip=False)


class CustomDomainForm(PlainLabels, forms.Form):
    domain = forms.CharField(label="Your domain", max_length=253, help_text="e.g. secondopinion.hospital.org")


class OperatorActionForm(PlainLabels, forms.Form):
    action = forms.ChoiceField(choices=OperatorAction.Action.choices)
    reason = forms.CharField(label="Reason", max_length=2000, widget=forms.Textarea(attrs={"rows": 2}))
