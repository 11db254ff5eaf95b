"""The patient-facing portal of an institution."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render


def portal_home(request: HttpRequest) -> HttpResponse:
    user = request.user
    if user.is_authenticated and user.is_institution_staff:  # type: ignore[union-attr]
        return redirect("review:home")
    return render(request, "intake/portal_home.html")
