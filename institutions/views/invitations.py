"""On an institution's domain: accepting an invitation to its team."""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from institutions.forms import InvitationAcceptForm
from institutions.invitations import InvitationRefused, invitation_accept, invitation_for_token
from tenants.access import request_institution


@require_http_methods(["GET", "POST"])
def invitation_accept_view(request: HttpRequest, token: str) -> HttpResponse:
    institution = request_institution(request)
    if institution is None:
        raise Http404
    try:
        invitation = invitation_for_token(institution=institution, token=token)
    except InvitationRefused as refusal:
        return render(request, "institutions/invitation_invalid.html", {"message": str(refusal)}, status=400)
    form = InvitationAcceptForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            message = invitation_accept(
                institution=institution,
                token=token,
                full_name=form.cleaned_data["full_name"],
                password=form.cleaned_data["password1"],
            )
        except InvitationRefused as refusal:
            return render(
                request, "institutions/invitation_invalid.html", {"message": str(refusal)}, status=400
            )
        messages.success(request, message)
        return redirect("account_login")
    return render(request, "institutions/invitation_accept.html", {"form": form, "invitation": invitation})
