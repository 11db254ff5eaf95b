"""What every view of the workspace shares: the signed-in user, going back to the case page with
a message, and the queue filters carried through a form."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponseRedirect, QueryDict
from django.shortcuts import redirect
from django.urls import reverse

from accounts.models import User
from intake.models import Case
from review import services


def request_user(request: HttpRequest) -> User:
    assert isinstance(request.user, User)
    return request.user


def queue_filters_query(query: str) -> str:
    # Only the queue's own filter parameters are carried back (never the search term).
    allowed = {"state", "reviewer", "due", "urgency"}
    params = QueryDict(query, mutable=True)
    for key in list(params.keys()):
        if key not in allowed:
            del params[key]
    encoded = params.urlencode()
    return f"?{encoded}" if encoded else ""


def back_to_case(case: Case, anchor: str = "") -> HttpResponseRedirect:
    return redirect(reverse("review:case", args=[case.public_id]) + (f"#{anchor}" if anchor else ""))


def run_step(
    request: HttpRequest, case: Case, step: Any, *, success: str, anchor: str = ""
) -> HttpResponseRedirect:
    """Run a service step; show its refusal message, or ``success``."""
    try:
        step()
    except services.ReviewError as error:
        messages.error(request, str(error))
    else:
        messages.success(request, success)
    return back_to_case(case, anchor)
