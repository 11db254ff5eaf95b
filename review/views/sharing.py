"""The patient shares their released opinion with their own doctor; the doctor opens it with the
link and the code (see ``review.sharing``). Every access, right or wrong, is audited."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.ratelimits import TOO_MANY_ATTEMPTS, attempt_allowed
from audit.services import audit_record
from intake.models import Case
from review import share_emails, sharing
from review.decorators import case_endpoint
from review.models import OpinionShare
from review.views.common import request_user
from review.views.opinion import opinion_pdf_redirect

SESSION_PREFIX = "opinion_share:"


@require_POST
@case_endpoint(action="share.create", role="patient", audit_success=False)
def patient_share_create(request: HttpRequest, case: Case) -> HttpResponse:
    """Make a link and a code; the code is shown on this answer only (it is not stored)."""
    try:
        days = int(request.POST.get("days", "30"))
        created = sharing.opinion_share_create(
            case=case, by=request_user(request), recipient=request.POST.get("recipient", ""), days=days
        )
    except (ValueError, sharing.ShareRefused):
        messages.error(request, _("The link could not be made. Please choose how long it should work."))
        return redirect("review:patient_opinion", public_id=case.public_id)
    audit_record(
        request=request,
        action="share.create",
        case=case,
        object_ref=f"share:{created.share.public_id}",
        detail={"days": days},
    )
    return _share_page(request, case, created.share, token=created.token, code=created.code)


def _share_page(
    request: HttpRequest, case: Case, share: OpinionShare, *, token: str, code: str, **extra: str
) -> HttpResponse:
    """The page that shows a link and its code (the only time they are shown), with the forms
    that email them to the doctor. Never cached."""
    link = request.build_absolute_uri(reverse("review:shared_opinion", args=[token]))
    context = {
        "case": case,
        "share": share,
        "link": link,
        "token": token,
        "code": code,
        "link_sent_to": "",
        "code_sent_to": "",
        "email_error": "",
        **extra,
    }
    response = render(request, "review/share_created.html", context)
    response["Cache-Control"] = "no-store"
    return response


@require_POST
@case_endpoint(action="share.email", role="patient", audit_success=False)
def patient_share_email(request: HttpRequest, case: Case) -> HttpResponse:
    """Email the doctor the link, or (separately) the code, of a share just made."""
    part = request.POST.get("part", "")
    if part not in share_emails.PARTS:
        return redirect("review:patient_opinion", public_id=case.public_id)
    try:
        parts = share_emails.share_parts_verify(
            case=case,
            share_id=request.POST.get("share", ""),
            token=request.POST.get("token", ""),
            code=request.POST.get("code", ""),
        )
    except share_emails.ShareEmailRefused as refusal:
        audit_record(request=request, action=f"share.email_{part}", case=case, allowed=False)
        messages.error(request, _(str(refusal)))
        return redirect("review:patient_opinion", public_id=case.public_id)
    page = {"token": parts.token, "code": parts.code}
    if not attempt_allowed(request, action="share_email", user=request_user(request)):
        return _share_page(request, case, parts.share, **page, email_error=_(TOO_MANY_ATTEMPTS))
    link = request.build_absolute_uri(reverse("review:shared_opinion", args=[parts.token]))
    try:
        address = share_emails.share_email_send(
            parts=parts,
            part=part,
            address=request.POST.get("address", ""),
            link=link,
            by=request_user(request),
        )
    except share_emails.ShareEmailRefused as refusal:
        return _share_page(request, case, parts.share, **page, email_error=_(str(refusal)))
    # Which part went, not where: the address is the doctor's, not needed to account for access.
    audit_record(
        request=request, action=f"share.email_{part}", case=case, object_ref=f"share:{parts.share.public_id}"
    )
    return _share_page(request, case, parts.share, **page, **{f"{part}_sent_to": address})


@require_POST
@case_endpoint(action="share.revoke", role="patient", audit_success=False)
def patient_share_revoke(request: HttpRequest, case: Case) -> HttpResponse:
    share_id = request.POST.get("share", "")
    if sharing.opinion_share_revoke(case=case, share_id=share_id):
        audit_record(request=request, action="share.revoke", case=case, object_ref=f"share:{share_id}")
        messages.success(request, _("The link is withdrawn: it no longer opens your opinion."))
    return redirect("review:patient_opinion", public_id=case.public_id)


def _refused(request: HttpRequest, action: str) -> HttpResponse:
    audit_record(request=request, action=action, object_ref="share:unknown", allowed=False)
    return render(request, "review/shared_gone.html", status=404)


def _unlocked(request: HttpRequest, share: OpinionShare) -> bool:
    until = request.session.get(SESSION_PREFIX + str(share.public_id))
    return bool(until) and str(until) > timezone.now().isoformat()


@require_http_methods(["GET", "POST"])
def shared_opinion(request: HttpRequest, token: str) -> HttpResponse:
    """The doctor's page: the code form, then the opinion."""
    share = sharing.share_by_token(token)
    if share is None:
        return _refused(request, "share.open")
    ref = f"share:{share.public_id}"
    error = ""
    if request.method == "POST":
        if not attempt_allowed(request, action="share_code"):
            audit_record(request=request, action="share.code", case=share.case, object_ref=ref, allowed=False)
            error = _("Too many attempts. Please wait a few minutes and try again.")
        else:
            result = sharing.share_code_check(share=share, code=request.POST.get("code", ""))
            audit_record(
                request=request,
                action="share.code",
                case=share.case,
                object_ref=ref,
                allowed=result == sharing.CodeCheck.RIGHT,
                detail={"result": result},
            )
            if result == sharing.CodeCheck.RIGHT:
                request.session.cycle_key()
                request.session[SESSION_PREFIX + str(share.public_id)] = share.expires_at.isoformat()
                return redirect("review:shared_opinion", token=token)
            error = (
                _("Too many wrong codes. This link is locked for a few minutes.")
                if result == sharing.CodeCheck.LOCKED
                else _("That code is not right. Please check it with the patient.")
            )
    if not _unlocked(request, share):
        if request.method == "GET":
            audit_record(request=request, action="share.open", case=share.case, object_ref=ref)
        response = render(request, "review/shared_code.html", {"error": error}, status=400 if error else 200)
    else:
        audit_record(request=request, action="share.view", case=share.case, object_ref=ref)
        context = {
            "case": share.case,
            "opinion": sharing.shared_opinion(share),
            "token": token,
            "share": share,
        }
        response = render(request, "review/shared_opinion.html", context)
        # No forms here: nothing needs the Origin header that "no-referrer" would blank (the code
        # form keeps the site's same-origin policy, or Chromium's POST would fail the CSRF check).
        response["Referrer-Policy"] = "no-referrer"
    response["Cache-Control"] = "no-store"
    return response


@require_GET
def shared_opinion_pdf(request: HttpRequest, token: str) -> HttpResponseBase:
    share = sharing.share_by_token(token)
    if share is None:
        return _refused(request, "share.pdf")
    ref = f"share:{share.public_id}"
    if not _unlocked(request, share):
        audit_record(request=request, action="share.pdf", case=share.case, object_ref=ref, allowed=False)
        return redirect("review:shared_opinion", token=token)
    audit_record(request=request, action="share.pdf", case=share.case, object_ref=ref)
    return opinion_pdf_redirect(request, share.case, sharing.shared_opinion(share))  # type: ignore[arg-type]
