"""The wizard's forms. They only parse and validate; intake.services writes."""

from __future__ import annotations

import datetime
from typing import Any

from django import forms
from django.utils import timezone
from django.utils.translation import gettext, gettext_noop
from django.utils.translation import gettext_lazy as _

from intake.models import Case

SUBMITTER_NAME_REQUIRED = gettext_noop(
    "Please tell us your own name, as the person filling in this form for the patient."
)
PATIENT_NAME_REQUIRED = gettext_noop("Please enter the patient's full name.")
BIRTH_DATE_REQUIRED = gettext_noop("Please enter the patient's date of birth.")
BIRTH_DATE_INVALID = gettext_noop("Please enter the date of birth as a full date, for example 1961-04-23.")
BIRTH_DATE_IN_FUTURE = gettext_noop("The date of birth cannot be in the future.")
BIRTH_DATE_TOO_OLD = gettext_noop("Please check the year of birth: it is more than 120 years ago.")
SEX_REQUIRED = gettext_noop("Please choose one of the options.")
CONTACT_REQUIRED = gettext_noop("Please give an email address or a phone number so we can reach the patient.")
CONSENT_REQUIRED = gettext_noop(
    "Please tick the box to agree to the terms. We cannot look at medical images without this consent."
)
DIAGNOSIS_REQUIRED = gettext_noop("Please tell us which diagnosis or treatment you would like reviewed.")
QUESTION_REQUIRED = gettext_noop("Please write the question you would like the physician to answer.")


class CasePatientForm(forms.Form):
    submitter_relation = forms.ChoiceField(
        label=_("Who is filling in this form?"),
        choices=Case.Relation.choices,
        widget=forms.RadioSelect,
        initial=Case.Relation.SELF,
    )
    submitter_name = forms.CharField(
        label=_("Your name"),
        required=False,
        max_length=200,
        help_text=_("Only if you are filling this in for someone else."),
        widget=forms.TextInput(attrs={"autocomplete": "name"}),
    )
    patient_name = forms.CharField(
        label=_("Patient's full name"),
        max_length=200,
        error_messages={"required": _(PATIENT_NAME_REQUIRED)},
        help_text=_("As written on the patient's medical records."),
    )
    patient_birth_date = forms.DateField(
        label=_("Patient's date of birth"),
        error_messages={"required": _(BIRTH_DATE_REQUIRED), "invalid": _(BIRTH_DATE_INVALID)},
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
    )
    patient_sex = forms.ChoiceField(
        label=_("Patient's sex"),
        choices=Case.Sex.choices,
        widget=forms.RadioSelect,
        error_messages={"required": _(SEX_REQUIRED)},
    )
    patient_email = forms.EmailField(
        label=_("Patient's email address"),
        required=False,
        help_text=_("We write here when the case moves on (as well as to your account's address)."),
        widget=forms.EmailInput(attrs={"autocomplete": "email"}),
    )
    patient_phone = forms.CharField(
        label=_("Patient's phone number"),
        required=False,
        max_length=40,
        widget=forms.TextInput(attrs={"type": "tel", "autocomplete": "tel"}),
    )
    consent = forms.BooleanField(
        label=_(
            "I have read the consent above and agree to the terms, and the patient consents to this review"
        ),
        error_messages={"required": _(CONSENT_REQUIRED)},
    )

    def clean_patient_birth_date(self) -> datetime.date:
        born: datetime.date = self.cleaned_data["patient_birth_date"]
        today = timezone.localdate()
        if born > today:
            raise forms.ValidationError(gettext(BIRTH_DATE_IN_FUTURE))
        if born.year < today.year - 120:
            raise forms.ValidationError(gettext(BIRTH_DATE_TOO_OLD))
        return born

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        relation = data.get("submitter_relation")
        if relation and relation != Case.Relation.SELF and not data.get("submitter_name", "").strip():
            self.add_error("submitter_name", gettext(SUBMITTER_NAME_REQUIRED))
        # No contact at all (a malformed email already has its own message).
        no_contact = not (data.get("patient_email") or data.get("patient_phone", "").strip())
        if no_contact and "patient_email" not in self.errors:
            self.add_error("patient_email", gettext(CONTACT_REQUIRED))
        return data

    @classmethod
    def initial_for(cls, case: Case) -> dict[str, Any]:
        return {
            "submitter_relation": case.submitter_relation,
            "submitter_name": case.submitter_name,
            "patient_name": case.patient_name,
            "patient_birth_date": case.patient_birth_date,
            "patient_sex": case.patient_sex,
            "patient_email": case.patient_email,
            "patient_phone": case.patient_phone,
            "consent": case.consented_at is not None,
        }


class CaseQuestionForm(forms.Form):
    diagnosis_to_review = forms.CharField(
        label=_("Which diagnosis or treatment would you like reviewed?"),
        max_length=300,
        help_text=_("For example: “a brain tumour found on MRI” or “the plan to operate on my spine”."),
        error_messages={"required": _(DIAGNOSIS_REQUIRED)},
    )
    question = forms.CharField(
        label=_("What would you like the physician to answer?"),
        widget=forms.Textarea(attrs={"rows": 4}),
        max_length=5000,
        error_messages={"required": _(QUESTION_REQUIRED)},
    )
    history = forms.CharField(
        label=_("Medical history that matters here"),
        required=False,
        max_length=10000,
        help_text=_("Symptoms, earlier treatments, medicines. A few lines are enough."),
        widget=forms.Textarea(attrs={"rows": 4}),
    )
    current_physician = forms.CharField(
        label=_("Current physician and hospital"),
        required=False,
        max_length=200,
        help_text=_("Optional. Who is treating the patient now."),
    )
    urgency = forms.ChoiceField(
        label=_("How soon is a decision due?"),
        choices=Case.Urgency.choices,
        widget=forms.RadioSelect,
        initial=Case.Urgency.ROUTINE,
    )

    @classmethod
    def initial_for(cls, case: Case) -> dict[str, Any]:
        return {
            "diagnosis_to_review": case.diagnosis_to_review,
            "question": case.question,
            "history": case.history,
            "current_physician": case.current_physician,
            "urgency": case.urgency,
        }
