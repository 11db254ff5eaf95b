"""Input of the review workspace, validated before any service runs."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy

from review.models import Opinion, Outcome


class SearchForm(forms.Form):
    q = forms.CharField(max_length=100, required=False, label="Case number or patient name")


class AssignForm(forms.Form):
    # "rules" or a reviewer's id.
    reviewer = forms.CharField(max_length=20)


class NoteForm(forms.Form):
    text = forms.CharField(max_length=5000, widget=forms.Textarea(attrs={"rows": 3}), label="Internal note")


class InfoRequestForm(forms.Form):
    note = forms.CharField(
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 3}),
        label="What do you need from the patient?",
    )


class DeclineForm(forms.Form):
    reason = forms.CharField(
        max_length=2000, widget=forms.Textarea(attrs={"rows": 3}), label="Reason (the patient reads it)"
    )


class OutcomeForm(forms.Form):
    kind = forms.ChoiceField(choices=Outcome.Kind.choices, label="What happened next")
    note = forms.CharField(max_length=300, required=False, label="Note (optional)")


class MatchForm(forms.Form):
    # A study id of the case, or "" for "matches no study".
    study = forms.CharField(max_length=20, required=False)


class OpinionForm(forms.Form):
    patient_summary = forms.CharField(
        required=False,
        max_length=5000,
        widget=forms.Textarea(attrs={"rows": 4}),
        label="Summary for the patient (plain language, shown to them first)",
    )
    question_restated = forms.CharField(
        required=False, max_length=10000, widget=forms.Textarea(attrs={"rows": 3}), label="The question"
    )
    findings = forms.CharField(required=False, max_length=50000, widget=forms.Textarea(attrs={"rows": 8}))
    impression = forms.CharField(required=False, max_length=20000, widget=forms.Textarea(attrs={"rows": 4}))
    agreement = forms.ChoiceField(
        required=False,
        choices=[("", "Choose…"), *Opinion.Agreement.choices],
        label="Agreement with the original diagnosis",
    )
    recommendation = forms.ChoiceField(
        required=False, choices=[("", "Choose…"), *Opinion.Recommendation.choices]
    )
    comments = forms.CharField(
        required=False, max_length=20000, widget=forms.Textarea(attrs={"rows": 4}), label="Further comments"
    )


class SignForm(forms.Form):
    secret = forms.CharField(
        max_length=200,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
        label="Your password or authenticator code",
    )


class FollowUpForm(forms.Form):
    question = forms.CharField(
        max_length=4000, widget=forms.Textarea(attrs={"rows": 3}), label=gettext_lazy("Your question")
    )


class AnswerForm(forms.Form):
    answer = forms.CharField(max_length=10000, widget=forms.Textarea(attrs={"rows": 3}), label="Answer")


class StaffMemberForm(forms.Form):
    is_institution_admin = forms.BooleanField(required=False, label="Administrator")
    is_coordinator = forms.BooleanField(required=False, label="Coordinator")
    is_reviewer = forms.BooleanField(required=False, label="Reviewer")
    credentials = forms.CharField(max_length=200, required=False)
    title = forms.CharField(max_length=200, required=False, label="Role (on signed opinions)")
    specialties = forms.CharField(max_length=300, required=False, help_text="Comma-separated")
    modalities = forms.CharField(max_length=100, required=False, help_text="Comma-separated, e.g. CT, MR")
    available = forms.BooleanField(required=False)
    max_open_cases = forms.IntegerField(min_value=0, max_value=500)


class ReviewSettingsForm(forms.Form):
    turnaround_business_days = forms.IntegerField(
        min_value=1, max_value=60, label="Turnaround (business days)"
    )
    soon_due_business_days = forms.IntegerField(
        min_value=0, max_value=30, label="Due soon within (business days)"
    )
    session_idle_minutes = forms.IntegerField(
        min_value=5, max_value=240, label="Staff sign-out after idle (minutes)"
    )
    reviewers_see_only_assigned = forms.BooleanField(
        required=False, label="Reviewers see only their assigned cases"
    )
    follow_up_questions_allowed = forms.IntegerField(
        min_value=0, max_value=20, label="Follow-up questions per case"
    )
    # Optional in the form so a post from an older page keeps the saved rate.
    peer_review_percent = forms.IntegerField(
        min_value=0,
        max_value=100,
        required=False,
        label="Signed opinions sent for peer review before release (percent)",
    )


class AuditFilterForm(forms.Form):
    action = forms.CharField(max_length=64, required=False)
    case_number = forms.CharField(max_length=32, required=False, label="Case number")
    actor_email = forms.CharField(max_length=254, required=False, label="Who (email)")


class OpinionTemplateForm(forms.Form):
    name = forms.CharField(max_length=120, label="Name (e.g. “MRI brain, tumour question”)")
    scope = forms.ChoiceField(
        choices=[("personal", "Mine only"), ("institution", "The institution's (all reviewers)")],
        initial="personal",
        required=False,
        label="Who uses it",
    )
    patient_summary = forms.CharField(
        required=False,
        max_length=5000,
        widget=forms.Textarea(attrs={"rows": 3}),
        label="Summary for the patient",
    )
    findings = forms.CharField(required=False, max_length=50000, widget=forms.Textarea(attrs={"rows": 6}))
    impression = forms.CharField(required=False, max_length=20000, widget=forms.Textarea(attrs={"rows": 3}))
    recommendation = forms.ChoiceField(
        required=False, choices=[("", "None"), *Opinion.Recommendation.choices]
    )
    comments = forms.CharField(
        required=False, max_length=20000, widget=forms.Textarea(attrs={"rows": 3}), label="Further comments"
    )


class TemplateChoiceForm(forms.Form):
    template = forms.IntegerField(min_value=1)


class AddendumForm(forms.Form):
    text = forms.CharField(
        max_length=20000, widget=forms.Textarea(attrs={"rows": 4}), label="Addendum (the patient reads it)"
    )
    secret = forms.CharField(
        max_length=200,
        required=False,  # not asked right after signing in (review.addenda)
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
        label="Your password or authenticator code",
    )


class PeerReviewRequestForm(forms.Form):
    reviewer = forms.IntegerField(min_value=1, label="Peer reviewer")


class PeerReviewAnswerForm(forms.Form):
    verdict = forms.ChoiceField(
        choices=[("agree", "I agree"), ("disagree", "I disagree")], widget=forms.RadioSelect
    )
    comment = forms.CharField(
        max_length=10000,
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        label="Comment (required when you disagree; staff only)",
    )
    # Not asked right after signing in (review.peer_review.peer_review_answer).
    secret = forms.CharField(
        max_length=200,
        required=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
        label="Your password or authenticator code",
    )


class PeerReviewOverrideForm(forms.Form):
    reason = forms.CharField(
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 2}),
        label="Why release without the peer's agreement",
    )
