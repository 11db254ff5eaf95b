"""The operators' console (platform domain): every institution's status and figures, and the
actions operators take on them, each recorded with its reason."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from institutions.access import access_operator
from institutions.forms import OperatorActionForm
from institutions.selectors import (
    institution_removals_recent,
    institution_rows_for_operators,
    operator_actions_recent,
)
from institutions.services import OperatorActionRefused, institution_operator_action
from tenants.models import Institution


@login_required
def operator_console(request: HttpRequest) -> HttpResponse:
    access_operator(request)
    try:
        page = int(request.GET.get("page", "1"))
    except ValueError:
        page = 1
    listing = institution_rows_for_operators(page=page, query=request.GET.get("q", "")[:100])
    return render(
        request,
        "institutions/operator_console.html",
        {
            "listing": listing,
            "rows": listing.rows,
            "actions": operator_actions_recent(),
            "removals": institution_removals_recent(),
            "action_form": OperatorActionForm(),
        },
    )


@login_required
@require_POST
def operator_institution_action(request: HttpRequest, institution_id: int) -> HttpResponse:
    operator = access_operator(request)
    form = OperatorActionForm(request.POST)
    if not form.is_valid():
        from institutions.services import REASON_REQUIRED

        messages.error(request, REASON_REQUIRED if "reason" in form.errors else "Choose an action.")
        return redirect("operator_console")
    try:
        institution_operator_action(
            institution_id=institution_id,
            operator_email=operator.email,
            action=form.cleaned_data["action"],
            reason=form.cleaned_data["reason"],
        )
    except Institution.DoesNotExist as exc:
        raise Http404 from exc
    except OperatorActionRefused as refusal:
        messages.error(request, str(refusal))
    else:
        messages.success(request, "Done. The action is recorded.")
    return redirect("operator_console")


@login_required
@require_POST
def operator_usage_refresh(request: HttpRequest) -> HttpResponse:
    access_operator(request)
    from institutions.tasks import institution_usage_refresh

    institution_usage_refresh.delay()
    messages.info(request, "Usage is being measured, institution after institution; reload in a while.")
    return redirect("operator_console")
