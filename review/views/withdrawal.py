"""The patient's side: deleting a draft, withdrawing a sent request (refund rules first)."""

from __future__ import annotations

import uuid

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_http_methods

from audit.services import audit_record
from intake.access import access_patient_case
from intake.models import Case
from review.withdrawal import (
    WithdrawalRefused,
    case_draft_delete,
    case_withdraw,
    case_withdrawal_terms,
)

DRAFT_DELETED = gettext_lazy("Your unsent request was deleted, with every file you had added to it.")
WITHDRAWN = gettext_lazy("Your request has been withdrawn. We have sent you an email to confirm it.")


@login_required
@require_http_methods(["GET", "POST"])
def case_withdraw_view(request: HttpRequest, public_id: uuid.UUID) -> HttpResponse:
    case = access_patient_case(request.user, public_id)
    if case.status == Case.Status.DRAFT:
        return redirect("review:case_delete", public_id=case.public_id)
    if request.method == "POST":
        try:
            case_withdraw(case=case)
        except WithdrawalRefused as refusal:
            messages.error(request, str(refusal))
        else:
            audit_record(request=request, action="case.withdraw", case=case, object_ref=str(case.public_id))
            messages.success(request, WITHDRAWN)
            return redirect("intake:case_status", public_id=case.public_id)
    return render(
        request, "review/case_withdraw.html", {"case": case, "terms": case_withdrawal_terms(case=case)}
    )


@login_required
@require_http_methods(["GET", "POST"])
def case_delete_view(request: HttpRequest, public_id: uuid.UUID) -> HttpResponse:
    case = access_patient_case(request.user, public_id)
    if case.status != Case.Status.DRAFT:
        return redirect("review:case_withdraw", public_id=case.public_id)
    if request.method == "POST":
        try:
            case_draft_delete(case=case)
        except WithdrawalRefused as refusal:
            messages.error(request, str(refusal))
        else:
            audit_record(request=request, action="case.delete_draft", object_ref=str(public_id))
            messages.success(request, DRAFT_DELETED)
            return redirect("intake:case_list")
    return render(request, "review/case_delete.html", {"case": case})
