"""The staff workspace of an institution."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render


@login_required
def staff_home(request: HttpRequest) -> HttpResponse:
    if not request.user.is_institution_staff:  # type: ignore[union-attr]
        raise PermissionDenied
    return render(request, "review/staff_home.html")
