"""Forms of the payment settings and the payment step."""

from __future__ import annotations

import datetime
from typing import Any

from django import forms
from django.utils import timezone

EXPIRY_IN_PAST = "Choose a date in the future, or leave it empty for a code that does not expire."


class WaiverCodeForm(forms.Form):
    code = forms.CharField(
        max_length=40,
        min_length=12,
        required=False,
        label="Code (leave empty for a random one)",
        help_text="Empty: a random code of 16 characters that nobody can guess. Your own: at least "
        "12 letters, digits and dashes; not case-sensitive.",
    )
    purpose = forms.CharField(max_length=200, required=False, help_text="For your team, e.g. “Hardship”.")
    max_uses = forms.IntegerField(
        min_value=1, required=False, label="Use limit", help_text="Empty: unlimited."
    )
    expires_on = forms.DateField(
        required=False,
        label="Valid until",
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text="Empty: no expiry. The code works until the end of that day in your institution's zone.",
    )

    def clean_code(self) -> str:
        code = "".join(str(self.cleaned_data["code"]).split()).upper()
        if not all(c.isalnum() or c == "-" for c in code):
            raise forms.ValidationError("Use letters, digits and dashes only.")
        return code

    def clean_expires_on(self) -> datetime.date | None:
        value: datetime.date | None = self.cleaned_data.get("expires_on")
        if value is not None and value < timezone.localdate():  # the institution's today
            raise forms.ValidationError(EXPIRY_IN_PAST)
        return value

    def expires_at(self) -> datetime.datetime | None:
        value = self.cleaned_data.get("expires_on")
        if value is None:
            return None
        # Midnight after that day on the institution's clock (the request's time zone).
        return timezone.make_aware(
            datetime.datetime.combine(value + datetime.timedelta(days=1), datetime.time.min)
        )


class WaiverApplyForm(forms.Form):
    code = forms.CharField(max_length=60, label="Waiver code")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["code"].widget.attrs.update({"autocomplete": "off", "autocapitalize": "characters"})
