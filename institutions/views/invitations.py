"""On an institution's domain: accepting an invitation to its team."""

from __future__ import annotations

from allauth.account.adapter import get_adapter
from django import forms
from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import urlencode
from django.views.decorators.http import require_http_methods

from accounts.models import User
from accounts.reauthentication import session_password_chosen
from institutions.forms import InvitationAcceptForm
from institutions.invitations import (
    INVITATION_SIGN_IN_FIRST,
    InvitationRefused,
    invitation_accept,
    invitation_for_token,
    invitation_needs_sign_in,
)
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
    user = request.user if isinstance(request.user, User) else None
    if invitation_needs_sign_in(invitation=invitation):
        # A verified account holds the address: its owner accepts while signed in to it.
        if user is None or str(getattr(user, "email", "")).lower() != invitation.email:
            messages.info(request, INVITATION_SIGN_IN_FIRST)
            return redirect(f"{reverse('account_login')}?{urlencode({'next': request.path})}")
        # Nothing to fill in: an empty POST (a bound form) is the acceptance.
        form: forms.Form = forms.Form(request.POST if request.method == "POST" else None)
    else:
        form = InvitationAcceptForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            accepted = invitation_accept(
                institution=institution,
                token=token,
                full_name=form.cleaned_data.get("full_name", ""),
                password=form.cleaned_data.get("password1", ""),
                signed_in=user,
            )
        except InvitationRefused as refusal:
            return render(
                request, "institutions/invitation_invalid.html", {"message": str(refusal)}, status=400
            )
        if accepted.password_chosen:
            # They typed the account's password on this page just now: signed in with it, they go
            # on to the workspace, which first has staff set up their authenticator (no second
            # password prompt there: the sign-in is recent).
            get_adapter(request).login(request, accepted.user)
            session_password_chosen(request, accepted.user)
        messages.success(request, accepted.message)
        return redirect("/workspace/")
    return render(request, "institutions/invitation_accept.html", {"form": form, "invitation": invitation})
