"""Sign-up of patients (and of people acting for them) on an institution's domain. It lives in
intake, not accounts, because signing up starts the patient's first request (a ``Case``).

allauth builds its sign-up form on top of this one (ACCOUNT_SIGNUP_FORM_CLASS): it adds the
email and password fields and calls ``signup`` once the account exists. Staff accounts are
never made here: nothing in this form can set a role.
"""

from __future__ import annotations

from django import forms
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _
from django.utils.translation import gettext_noop

from accounts.models import User
from intake.models import Case

FULL_NAME_REQUIRED = gettext_noop("Please enter your full name.")
RELATION_REQUIRED = gettext_noop("Please tell us who you are in this request.")


class PatientSignupForm(forms.Form):
    full_name = forms.CharField(
        label=_("Your full name"),
        max_length=200,
        error_messages={"required": _(FULL_NAME_REQUIRED)},
        widget=forms.TextInput(attrs={"autocomplete": "name"}),
    )
    submitter_relation = forms.ChoiceField(
        label=_("Who is the second opinion for?"),
        choices=[
            (Case.Relation.SELF, _("Me: I am the patient")),
            (Case.Relation.FAMILY, _("A family member or someone I care for")),
            (Case.Relation.PHYSICIAN, _("My patient: I am their physician")),
            (Case.Relation.OTHER, _("Someone else I act for")),
        ],
        widget=forms.RadioSelect,
        initial=Case.Relation.SELF,
        error_messages={"required": _(RELATION_REQUIRED)},
    )

    def signup(self, request: HttpRequest, user: User) -> None:
        """Called by allauth after the account is saved: keep the name, and start the first
        request with who is submitting it, so the wizard can ask the right questions."""
        from intake.services import case_start

        user.full_name = self.cleaned_data["full_name"].strip()
        user.save(update_fields=["full_name"])
        case_start(owner=user, submitter_relation=self.cleaned_data["submitter_relation"])
